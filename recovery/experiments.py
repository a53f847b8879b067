"""Action experiments: a playbook's variants, and ending an experiment by keeping one.

While a playbook has two or more active variants and its experiment has not ended, each case
it opens draws one (recovery.lifecycle.draw) and is offered that variant's actions. Ending the
experiment keeps one variant: its actions become the playbook's, and every variant stops, so
the cases drawn so far stay the evidence of what each did.

Each function owns its transaction and locks the playbook row first, so an edit and an
ending cannot interleave.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import transaction

from accounts.errors import ConflictError, InvalidInput, NotFoundError
from recovery.models import Playbook, PlaybookVariant
from recovery.rules import check_action_template

MAX_ACTIONS, MAX_ACTION_LENGTH, MAX_NAME_LENGTH = 10, 300, 100


def check_variant(*, name: str, actions: Sequence[str]) -> None:
    """What a variant must be, whoever sends it: a name, and up to ten valid action texts."""
    if not name.strip():
        raise InvalidInput("Give the variant a name.", field="name", code="required")
    if len(name.strip()) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"At most {MAX_NAME_LENGTH} characters.", field="name", code="max_length"
        )
    if not actions:
        raise InvalidInput("A variant suggests at least one action.", field="actions")
    if len(actions) > MAX_ACTIONS or any(len(a) > MAX_ACTION_LENGTH for a in actions):
        raise InvalidInput(
            f"Up to {MAX_ACTIONS} actions of up to {MAX_ACTION_LENGTH} characters each.",
            field="actions",
        )
    for index, template in enumerate(actions):
        try:
            check_action_template(template)
        except ValueError as exc:
            raise InvalidInput(str(exc), field=f"actions[{index}]", code="placeholder") from exc


def _locked(playbook: Playbook) -> Playbook:
    return Playbook.objects.select_for_update().get(pk=playbook.pk)


@transaction.atomic
def save_variant(
    *,
    playbook: Playbook,
    variant_id: int | None,
    name: str,
    actions: Sequence[str],
    is_active: bool,
    now: datetime,
) -> PlaybookVariant:
    """Add a variant (variant_id None) or change one. Activating a variant of an ended
    experiment starts a new one: the kept variant stays the playbook's actions until then."""
    check_variant(name=name, actions=actions)
    playbook = _locked(playbook)
    if variant_id is None:
        last = (
            PlaybookVariant.objects.filter(playbook=playbook)
            .order_by("-position")
            .values_list("position", flat=True)
            .first()
        )
        variant = PlaybookVariant(
            organization_id=playbook.organization_id,
            playbook=playbook,
            position=(last or 0) + 1,
            created_at=now,
        )
    else:
        found = PlaybookVariant.objects.filter(playbook=playbook, pk=variant_id).first()
        if found is None:
            raise NotFoundError("No such variant of this playbook.", field="variant")
        variant = found
    variant.name = name.strip()
    variant.actions = list(actions)
    variant.is_active = is_active
    variant.ended_at = None if is_active else (variant.ended_at or now)
    variant.save()
    if is_active and playbook.experiment_ended_at is not None:
        playbook.experiment_ended_at = None
        playbook.kept_variant = None
        playbook.save(update_fields=["experiment_ended_at", "kept_variant"])
    return variant


@transaction.atomic
def end_experiment(*, playbook: Playbook, kept_variant_id: int, now: datetime) -> Playbook:
    """Keep one variant: its actions become the playbook's, every variant stops, and cases
    from now on get the playbook's actions. The cases drawn so far keep their variant."""
    playbook = _locked(playbook)
    variants = {
        v.pk: v for v in PlaybookVariant.objects.active().filter(playbook=playbook).order_by("pk")
    }
    if playbook.experiment_ended_at is not None or len(variants) < 2:
        raise ConflictError(
            "This playbook has no experiment running.", field="kept_variant", code="no_experiment"
        )
    kept = variants.get(kept_variant_id)
    if kept is None:
        raise InvalidInput("Choose one of the experiment's active variants.", field="kept_variant")
    PlaybookVariant.objects.filter(pk__in=variants).update(is_active=False, ended_at=now)
    playbook.experiment_ended_at = now
    playbook.kept_variant = kept
    playbook.actions = list(kept.actions)
    playbook.save(update_fields=["experiment_ended_at", "kept_variant", "actions"])
    return playbook

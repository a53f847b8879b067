"""Every change to a case goes through here; each function owns its transaction.

Lock order, everywhere: an import's advisory locks (imports.locks), the customer row
(cxcore.services.lock_customers), then the case row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.errors import ForbiddenError, InvalidInput, NotFoundError
from accounts.models import Membership, Organization, User
from accounts.tenancy import Tenant
from cxcore.models import (
    Customer,
    CustomerEdit,
    EditKind,
    Episode,
    EpisodeKind,
    Identifier,
    Source,
)
from cxcore.outbound import emit_customer_merged
from cxcore.services import (
    EpisodeInput,
    lock_customers,
    rebuild_narrative,
    record_customer_edit,
    record_episode,
    save_narrative,
)
from cxcore.services.erased import refuse_erased
from cxcore.text_rules import check_free_text
from imports.locks import refuse_while_importing
from recovery import lifecycle
from recovery.events import SYSTEM, Actor, actor_event, save_case_events
from recovery.models import (
    CaseAction,
    CaseEventType,
    CaseKind,
    CaseStatus,
    Playbook,
    RecoveryCase,
)
from recovery.rules import DEFAULT_PLAYBOOKS, PlaybookSpec, check_action_template, check_sla
from recovery.vocabulary import PLAYBOOK_FIELDS


def _save_events(applied: lifecycle.Applied, *, now: datetime) -> None:
    save_case_events(applied.events, now=now)


# --- playbooks -------------------------------------------------------------------------------


def create_default_playbooks(*, organization: Organization) -> list[Playbook]:
    """The sensible defaults every organization starts with (idempotent)."""
    if Playbook.objects.for_org(organization).exists():
        return []
    return Playbook.objects.bulk_create(
        Playbook(organization=organization, position=position, **spec)
        for position, spec in enumerate(DEFAULT_PLAYBOOKS, start=1)
    )


def playbook_specs(organization_ids: Iterable[int]) -> dict[int, list[PlaybookSpec]]:
    """Active playbooks of several organizations, in matching order, as plain specs."""
    specs: dict[int, list[PlaybookSpec]] = {}
    for playbook in (
        Playbook.objects.active()
        .filter(organization_id__in=set(organization_ids))
        .order_by("organization_id", "position", "id")
    ):
        specs.setdefault(playbook.organization_id, []).append(
            PlaybookSpec(
                id=playbook.pk,
                case_kind=playbook.case_kind,
                match_touchpoints=playbook.match_touchpoints or (),
                match_third_party=playbook.match_third_party,
                match_max_experience=playbook.match_max_experience,
                match_kinds=playbook.match_kinds or (),
                match_standing=playbook.match_standing or (),
                actions=playbook.actions or (),
                ack_sla=playbook.ack_sla,
                resolve_sla=playbook.resolve_sla,
                show_at_visit=playbook.show_at_visit,
            )
        )
    return specs


def _check_playbook_fields(fields: dict) -> None:
    unknown = set(fields) - set(PLAYBOOK_FIELDS)
    if unknown:
        raise InvalidInput("Not a playbook field.", field=sorted(unknown)[0], code="unknown")
    for name in ("ack_sla", "resolve_sla"):
        if name in fields:
            try:
                check_sla(fields[name])
            except ValueError as exc:
                raise InvalidInput(str(exc), field=name) from exc
    for index, template in enumerate(fields.get("actions") or []):
        try:
            check_action_template(template)
        except ValueError as exc:
            raise InvalidInput(str(exc), field=f"actions[{index}]", code="placeholder") from exc


@transaction.atomic
def create_playbook(*, organization: Organization, **fields) -> Playbook:
    """A new playbook, matched after the existing ones."""
    _check_playbook_fields(fields)
    # The organization row serialises concurrent creations, even when it has no playbook yet.
    Organization.objects.select_for_update(no_key=True).filter(pk=organization.pk).first()
    last = (
        Playbook.objects.for_org(organization)
        .select_for_update()
        .order_by("-position")
        .values_list("position", flat=True)
        .first()
    )
    return Playbook.objects.create(organization=organization, position=(last or 0) + 1, **fields)


@transaction.atomic
def update_playbook(*, playbook: Playbook, **fields) -> Playbook:
    _check_playbook_fields(fields)
    for name, value in fields.items():
        setattr(playbook, name, value)
    playbook.save(update_fields=list(fields))
    return playbook


@transaction.atomic
def reorder_playbooks(*, organization: Organization, order: Sequence[int]) -> list[Playbook]:
    """Set the matching order; `order` must name every playbook of the organization once."""
    playbooks = {
        p.pk: p for p in Playbook.objects.for_org(organization).select_for_update().order_by("pk")
    }
    if sorted(order) != sorted(playbooks):
        raise InvalidInput(
            "List every playbook id of the organization exactly once.", field="order"
        )
    for position, playbook_id in enumerate(order, start=1):
        playbooks[playbook_id].position = position
    Playbook.objects.bulk_update(playbooks.values(), ["position"])
    return [playbooks[playbook_id] for playbook_id in order]


# --- working a case --------------------------------------------------------------------------


def _lock_open_case(case: RecoveryCase) -> RecoveryCase:
    """Lock the customer, then the case; refuse with 409 unless it is still open."""
    lock_customers([case.customer_id])
    case = (
        RecoveryCase.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=case.pk)
    )
    lifecycle.require_open(case)
    return case


def acknowledge_case(
    *, case: RecoveryCase, actor: Actor = SYSTEM, now: datetime | None = None
) -> RecoveryCase:
    now = now or timezone.now()
    with transaction.atomic():
        case = _lock_open_case(case)
        applied = lifecycle.acknowledge(case, actor=actor, now=now)
        if applied.events:
            case.save(
                update_fields=["acknowledged_at", "acknowledged_by", "escalate_at", "last_acted_at"]
            )
            _save_events(applied, now=now)
    return case


def assign_case(
    *,
    case: RecoveryCase,
    assignee: User | None,
    actor: Actor = SYSTEM,
    now: datetime | None = None,
) -> RecoveryCase:
    now = now or timezone.now()
    if (
        assignee is not None
        and not Membership.objects.filter(
            user=assignee, organization_id=case.organization_id
        ).exists()
    ):
        raise NotFoundError("No such member of this organization.", field="assignee")
    with transaction.atomic():
        case = _lock_open_case(case)
        case.assignee = assignee
        case.save(update_fields=["assignee"])
        save_case_events(
            [
                actor_event(
                    case,
                    CaseEventType.ASSIGNED,
                    actor,
                    at=now,
                    assignee=assignee.email if assignee else None,
                )
            ],
            now=now,
        )
    return case


def resolve_case(
    *,
    case: RecoveryCase,
    note: str = "",
    action_ids: Sequence[int] = (),
    actor: Actor = SYSTEM,
    now: datetime | None = None,
) -> RecoveryCase:
    """Close the loop: log the recovery episode in the narrative and resolve the case."""
    now = now or timezone.now()
    check_free_text(note, field="note")
    with transaction.atomic():
        case = _lock_open_case(case)
        actions = {a.pk: a for a in case.actions.all()}
        unknown = [action_id for action_id in action_ids if action_id not in actions]
        if unknown:
            raise InvalidInput(f"Not an action of this case: {unknown[0]}.", field="actions")
        taken = [actions[action_id] for action_id in action_ids]
        summary = "; ".join([a.text for a in taken] + ([note] if note else [])) or "Followed up."
        kind = EpisodeKind.RECOVERY if case.kind == CaseKind.RECOVERY else EpisodeKind.OUTREACH
        episode = record_episode(
            organization=case.organization,
            data=EpisodeInput(
                kind=kind,
                customer_id=case.customer_id,
                occurred_at=now,
                # Where it happened: the actor's till, else where the case opened; an archived
                # location takes nothing new, so then at none.
                location=next(
                    (at for at in (actor.location, case.location) if at and at.is_active), None
                ),
                source=Source.API if actor.api_key else Source.STAFF,
                summary=summary[:4000],
            ),
            author_user=actor.user,
            author_api_key=actor.api_key,
            now=now,
        ).episode
        CaseAction.objects.filter(pk__in=[a.pk for a in taken]).update(taken_at=now)
        applied = lifecycle.resolve(
            case,
            lifecycle.Resolve(case.pk, lifecycle.Reason.FOLLOW_UP, episode.pk, now),
            outcome_window=case.organization.recovery_outcome_window,
            now=now,
            actor=actor,
            where=True,
            actions=[a.pk for a in taken],
            note=note[:500],
        )
        _close(case, applied, now=now)
    return case


def dismiss_case(
    *, case: RecoveryCase, reason: str, actor: Actor = SYSTEM, now: datetime | None = None
) -> RecoveryCase:
    now = now or timezone.now()
    if not reason.strip():
        raise InvalidInput("Say why the case is dismissed.", field="reason", code="required")
    check_free_text(reason, field="reason")
    with transaction.atomic():
        case = _lock_open_case(case)
        _close(case, lifecycle.dismiss(case, reason=reason, actor=actor, now=now), now=now)
    return case


def _close(case: RecoveryCase, applied: lifecycle.Applied, *, now: datetime) -> None:
    """Save a case the lifecycle has just closed (customer and case locked), its history, and
    the customer's marks with the due times they imply."""
    case.save()
    _save_events(applied, now=now)
    # Read the (already locked) row again: resolving has just folded the recovery episode in.
    locked = lock_customers([case.customer_id])[case.customer_id]
    save_narrative(case.customer_id, locked, now=now, **applied.marks)


# --- prompts at the till ---------------------------------------------------------------------

SHOWN_COLLAPSE = timedelta(minutes=15)


def record_prompts_shown(
    *, cases: Sequence[RecoveryCase], actor: Actor, now: datetime | None = None
) -> int:
    """Record that these prompts were shown (where, when, to whom).

    A polling POS shows the same prompt every few seconds: a showing at the same location
    within SHOWN_COLLAPSE of the last one is the same showing. The compare-and-swap UPDATE
    decides which cases get an event, so concurrent tills cannot double it either.
    """
    if not cases:
        return 0
    now = now or timezone.now()
    location_id = actor.location.pk if actor.location else None
    elsewhere = (
        Q(last_shown_location__isnull=False)
        if location_id is None
        else Q(last_shown_location__isnull=True) | ~Q(last_shown_location_id=location_id)
    )
    fresh = RecoveryCase.objects.filter(
        pk__in=[c.pk for c in cases], status=CaseStatus.OPEN
    ).filter(Q(last_shown_at__isnull=True) | Q(last_shown_at__lt=now - SHOWN_COLLAPSE) | elsewhere)
    with transaction.atomic():
        ids = list(fresh.values_list("pk", flat=True))
        if not ids:
            return 0
        RecoveryCase.objects.filter(pk__in=ids).update(
            last_shown_at=now, last_shown_location_id=location_id
        )
        save_case_events(
            [
                actor_event(case, CaseEventType.SHOWN, actor, at=now, where=True)
                for case in cases
                if case.pk in ids
            ],
            now=now,
        )
    return len(ids)


def not_now(*, case: RecoveryCase, actor: Actor = SYSTEM, now: datetime | None = None) -> None:
    """Staff could not act this time: the case stays open and shows again next visit."""
    now = now or timezone.now()
    with transaction.atomic():
        case = _lock_open_case(case)
        applied = lifecycle.not_now(case, actor=actor, now=now)
        case.save(update_fields=["last_acted_at"])
        _save_events(applied, now=now)


# --- merging duplicates ----------------------------------------------------------------------


def check_merge_allowed(*, tenant: Tenant, into: Customer, duplicate: Customer) -> None:
    """A merge moves a narrative and dismisses cases: it is for owners and managers (or an
    organization-wide key), and only over cases the actor can see. ForbiddenError otherwise."""
    if tenant.api_key is not None:
        if not tenant.is_org_wide_key:
            raise ForbiddenError(
                "A key limited to a location cannot merge customers; use an organization-wide key.",
                code="merge_not_allowed",
            )
    elif not tenant.is_manager_or_owner:
        raise ForbiddenError(
            "Merging customers is for owners and managers.", code="merge_not_allowed"
        )
    if tenant.location_ids is None:
        return
    hidden = (
        RecoveryCase.objects.filter(customer_id__in=[into.pk, duplicate.pk])
        .exclude(location_id__in=tenant.location_ids)
        .exclude(location__isnull=True)
        .select_related("location", "customer")
        .order_by("pk")
        .first()
    )
    if hidden is not None and hidden.location is not None:
        field = "customer" if hidden.customer_id == into.pk else "duplicate"
        raise ForbiddenError(
            f"{hidden.customer.display_name} has a case at {hidden.location.name}, which you "
            "cannot see; ask an owner or a manager of that location to merge.",
            field=field,
            code="case_not_visible",
        )


def merge_customers(
    *, into: Customer, duplicate: Customer, actor: Actor = SYSTEM, now: datetime | None = None
) -> Customer:
    """One person, one narrative: move the duplicate's identifiers, episodes and cases into
    `into`, then delete the duplicate. If both have an open case of a kind, the duplicate's
    is dismissed (the constraint allows one), so nothing is lost from the history."""
    now = now or timezone.now()
    if into.pk == duplicate.pk or into.organization_id != duplicate.organization_id:
        raise InvalidInput("Merge two different customers of one organization.", field="customer")
    with transaction.atomic():
        # Deleting the duplicate would wait for an import's whole file on its key-share locks.
        refuse_while_importing(into.organization_id, doing="merge")
        lock_customers([into.pk, duplicate.pk])
        # An erased row takes nothing in (it would carry the person again) and gives nothing:
        # its anonymised episodes would join someone's narrative.
        refuse_erased(
            organization_id=into.organization_id, customer_ids=[into.pk], field="customer"
        )
        refuse_erased(
            organization_id=into.organization_id, customer_ids=[duplicate.pk], field="duplicate"
        )
        for kind in (CaseKind.RECOVERY, CaseKind.CARE):
            keep = RecoveryCase.objects.filter(customer=into, kind=kind, status=CaseStatus.OPEN)
            if keep.exists():
                for case in RecoveryCase.objects.filter(
                    customer=duplicate, kind=kind, status=CaseStatus.OPEN
                ).select_related("organization"):
                    applied = lifecycle.dismiss(
                        case, reason=f"Merged into customer #{into.pk}", actor=actor, now=now
                    )
                    _close(case, applied, now=now)
        moved = [
            f"{kind}:{value}"
            for kind, value in Identifier.objects.filter(customer=duplicate)
            .order_by("kind", "value")
            .values_list("kind", "value")
        ]
        Identifier.objects.filter(customer=duplicate).update(customer=into)
        Episode.objects.filter(customer=duplicate).update(customer=into)
        RecoveryCase.objects.filter(customer=duplicate).update(customer=into)
        # Their partner incidents are the person's too (partners builds on recovery, hence here).
        from partners.models import PartnerIncident

        PartnerIncident.objects.filter(customer=duplicate).update(customer=into)
        # The duplicate's card history is the person's too: it moves rather than cascades.
        CustomerEdit.objects.filter(customer=duplicate).update(customer=into)
        merged = Customer.objects.get(pk=duplicate.pk)
        survivor = Customer.objects.get(pk=into.pk)
        before = {"name": survivor.name, "notes": survivor.notes}
        survivor.name = survivor.name or merged.name
        survivor.notes = "\n".join(n for n in (survivor.notes, merged.notes) if n)[:2000]
        changes: dict[str, dict] = {
            field: {"old": old, "new": getattr(survivor, field)}
            for field, old in before.items()
            if getattr(survivor, field) != old
        }
        if moved:
            changes["identifiers"] = {"old": None, "new": moved}
        # Always a row, even when nothing on the card changed: the merge itself is history.
        changes["merged_customer"] = {"old": duplicate.pk, "new": None}
        record_customer_edit(
            organization_id=survivor.organization_id,
            customer_id=survivor.pk,
            changes=changes,
            kind=EditKind.MERGE,
            by_user=actor.user,
            by_api_key=actor.api_key,
            now=now,
        )
        survivor.recovery_handled_until = _latest(
            survivor.recovery_handled_until, merged.recovery_handled_until
        )
        survivor.recovery_resolved_at = _latest(
            survivor.recovery_resolved_at, merged.recovery_resolved_at
        )
        survivor.care_handled_until = _latest(
            survivor.care_handled_until, merged.care_handled_until
        )
        survivor.recovery_case_open = RecoveryCase.objects.filter(
            customer=survivor, kind=CaseKind.RECOVERY, status=CaseStatus.OPEN
        ).exists()
        survivor.care_case_open = RecoveryCase.objects.filter(
            customer=survivor, kind=CaseKind.CARE, status=CaseStatus.OPEN
        ).exists()
        survivor.save(
            update_fields=[
                "name",
                "notes",
                "recovery_handled_until",
                "recovery_resolved_at",
                "care_handled_until",
                "recovery_case_open",
                "care_case_open",
            ]
        )
        Customer.objects.filter(pk=duplicate.pk).delete()
        rebuild_narrative(customer_id=survivor.pk, now=now)
        emit_customer_merged(
            organization_id=survivor.organization_id,
            into_id=survivor.pk,
            duplicate_id=duplicate.pk,
            at=now,
        )
    return Customer.objects.get(pk=survivor.pk)


def _latest(*values):
    present = [v for v in values if v is not None]
    return max(present) if present else None


def set_daily_digest(*, membership: Membership, enabled: bool) -> None:
    Membership.objects.filter(pk=membership.pk).update(daily_digest=enabled)

"""Retention: free text older than an organization's `text_retention_days` is cleared.

Off by default (the setting is empty). When set, the nightly task (and `manage.py
clear_old_text`) clears, for rows older than the cutoff:

- an episode's `summary` (by `occurred_at`): what staff or the POS wrote about the visit;
- an experience correction's `reason` (by `corrected_at`): what staff wrote about why;
- a customer edit's `changes` (by `at`): the old and new values of a name, notes or an
  identifier (the names of the fields changed stay);
- what other apps register (`register_retention_step`): recovery clears its cases' texts.

What stays: every row, its kind, times, location, experience, touchpoints, items and
amounts, so counts, the narrative state and insights do not change. Not cleared by age: the
customer's current card (name, notes, identifiers), which is the live record staff work from
and goes only by an edit or an erasure (cxcore.privacy).

The work is done in chunks of RETENTION_BATCH_SIZE rows, each its own transaction, walking a
keyset over the rows still holding text, so a large backlog never holds long locks and a run
that stops half way is finished by the next. Running it twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import Organization
from cxcore.keyset import keyset_page
from cxcore.models import CustomerEdit, Episode, ExperienceCorrection


@dataclass(frozen=True)
class RetentionContext:
    organization: Organization
    cutoff: datetime
    batch_size: int


# A step clears what its app holds from before the cutoff and says how many rows, by kind.
RetentionStep = Callable[[RetentionContext], dict[str, int]]
_steps: dict[str, RetentionStep] = {}


def register_retention_step(name: str, step: RetentionStep) -> None:
    """Run `step` for every organization with a retention setting (again: replaced)."""
    _steps[name] = step


def clear_in_chunks(
    qs: QuerySet[Any], *, order: Sequence[str], values: dict[str, Any], batch_size: int
) -> int:
    """Set `values` on every row of `qs` (which holds only rows still to clear), a chunk of
    `batch_size` rows per transaction, walking the keyset `order` (non-null fields ending in
    the id) so no chunk rescans the ones before it; how many rows were cleared."""
    cleared, after = 0, None
    while True:
        rows, after = keyset_page(qs.only(*order), order=order, after=after, limit=batch_size)
        if rows:
            with transaction.atomic():
                # The predicate again: a row changed meanwhile is cleared once, not twice.
                cleared += qs.filter(pk__in=[row.pk for row in rows]).update(**values)
        if after is None:
            return cleared


def clear_core_text(context: RetentionContext) -> dict[str, int]:
    org, cutoff, size = context.organization, context.cutoff, context.batch_size
    return {
        "episode_summaries": clear_in_chunks(
            Episode.objects.filter(organization=org, occurred_at__lt=cutoff).exclude(summary=""),
            order=("occurred_at", "id"),
            values={"summary": ""},
            batch_size=size,
        ),
        "correction_reasons": clear_in_chunks(
            ExperienceCorrection.objects.filter(
                episode__organization=org, corrected_at__lt=cutoff
            ).exclude(reason=""),
            order=("corrected_at", "id"),
            values={"reason": ""},
            batch_size=size,
        ),
        "customer_edit_values": clear_in_chunks(
            CustomerEdit.objects.filter(Q(organization=org) & Q(at__lt=cutoff)).exclude(changes={}),
            order=("at", "id"),
            values={"changes": {}},
            batch_size=size,
        ),
    }


def clear_old_text(
    *,
    now: datetime | None = None,
    organization: Organization | None = None,
    batch_size: int | None = None,
) -> dict[str, int]:
    """Clear the free text older than each organization's setting (only those with one, or
    only `organization`); how many rows were cleared, by kind, over all of them."""
    now = now or timezone.now()
    size = batch_size or settings.RETENTION_BATCH_SIZE
    orgs = Organization.objects.filter(text_retention_days__isnull=False).order_by("id")
    if organization is not None:
        orgs = orgs.filter(pk=organization.pk)
    totals: dict[str, int] = {}
    for org in orgs:
        assert org.text_retention_days is not None
        context = RetentionContext(
            organization=org,
            cutoff=now - timedelta(days=org.text_retention_days),
            batch_size=size,
        )
        for step in (clear_core_text, *_steps.values()):
            for kind, count in step(context).items():
                totals[kind] = totals.get(kind, 0) + count
    return totals

"""Outcomes, measured by behaviour: after a case, did the customer come back, and how was it?

A resolved case is measured from its resolution (the followed-up cohort); a case dismissed or
still open when its window ends is measured from its opening (the not-followed-up cohort).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from cxcore.models import FOLLOW_UP_KINDS, VISIT_KINDS, Episode
from recovery.events import case_event, save_case_events
from recovery.models import CaseEventType, CaseStatus, RecoveryCase
from recovery.rules import outcome_of

BATCH = 500


def measure_outcomes(*, now: datetime | None = None, batch_size: int = BATCH) -> dict[str, int]:
    """Set the outcome of every case whose customer came back or whose window has ended."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    last_id = 0
    while True:
        with transaction.atomic():
            cases = list(
                RecoveryCase.objects.filter(
                    outcome_due_at__isnull=False, outcome="", pk__gt=last_id
                )
                .order_by("pk")
                .select_for_update(skip_locked=True)[:batch_size]
            )
            if not cases:
                return counts
            last_id = cases[-1].pk
            _measure(cases, now, counts)
        if len(cases) < batch_size:
            return counts


def _reference(case: RecoveryCase) -> datetime:
    """Outcomes count from the resolution if there was one, else from the opening."""
    if case.status == CaseStatus.RESOLVED and case.resolved_at is not None:
        return case.resolved_at
    return case.opened_at


def _measure(cases: list[RecoveryCase], now: datetime, counts: dict[str, int]) -> None:
    reference = {case.pk: _reference(case) for case in cases}
    customers = {case.customer_id for case in cases}
    episodes: dict[int, list[Episode]] = {}
    for episode in (
        Episode.objects.filter(customer_id__in=customers, occurred_at__gt=min(reference.values()))
        .filter(Q(kind__in=VISIT_KINDS) | Q(experience__isnull=False))
        .exclude(kind__in=FOLLOW_UP_KINDS)
        .order_by("customer_id", "occurred_at", "id")
        .only("id", "customer_id", "kind", "occurred_at", "experience")
    ):
        episodes.setdefault(episode.customer_id, []).append(episode)
    changed, events = [], []
    for case in cases:
        due = case.outcome_due_at
        assert due is not None  # only cases with an outcome due are measured
        window_over = now >= due
        if case.status == CaseStatus.OPEN and not window_over:
            continue  # still being worked: the cohort is not known yet
        # Each case against its own reference time: a customer may have several cases.
        after = [
            e for e in episodes.get(case.customer_id, []) if e.occurred_at > reference[case.pk]
        ]
        visit = next((e for e in after if e.kind in VISIT_KINDS), None)
        if visit is not None and visit.occurred_at > due:
            visit = None  # came back only after the window: counted as lost
        experience = next((e for e in after if e.experience is not None), None)
        outcome = outcome_of(
            came_back=visit is not None,
            next_experience=experience.experience if experience else None,
            window_over=window_over,
        )
        if outcome is None:
            continue
        case.outcome = outcome
        case.outcome_at = now
        case.outcome_episode = visit
        case.outcome_followed_up = case.status == CaseStatus.RESOLVED
        case.outcome_due_at = None
        changed.append(case)
        events.append(case_event(case, CaseEventType.OUTCOME, at=now, outcome=outcome))
        counts[outcome] = counts.get(outcome, 0) + 1
    RecoveryCase.objects.bulk_update(
        changed,
        ["outcome", "outcome_at", "outcome_episode", "outcome_followed_up", "outcome_due_at"],
    )
    save_case_events(events, now=now)

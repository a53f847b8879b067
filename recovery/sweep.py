"""The sweeps: open what is due, found through the partial indexes on the customer row.

Each batch is one transaction over at most `batch_size` customers, taken with
FOR UPDATE SKIP LOCKED: two sweeps at once take disjoint customers, a killed worker's batch
rolls back and the next run does it, and the cost follows what is due, not what exists. The
partial unique constraint on open cases stays the last word if anything else races.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from cxcore.bulk import insert_rows, update_rows
from cxcore.models import FOLLOW_UP_KINDS, VISIT_KINDS, Customer, Episode
from cxcore.rules import due_times, is_unfollowed_negative
from cxcore.services import LockedNarrative, lock_customers
from recovery.events import case_event
from recovery.models import (
    CaseAction,
    CaseEvent,
    CaseEventType,
    CaseKind,
    CaseStatus,
    CaseTrigger,
    RecoveryCase,
)
from recovery.rules import (
    CaseContext,
    PlaybookSpec,
    first_match,
    first_name_of,
    raised,
    render_action,
    severity_for,
    standing_of,
)
from recovery.services import playbook_specs

DEFAULT_BATCH = 1000
# How far back before the latest negative its fellow triggers are gathered.
TRIGGER_LOOKBACK = timedelta(days=30)


@dataclass
class SweepResult:
    opened: int = 0
    reopened: int = 0
    deviations: int = 0
    resolved: int = 0
    looked_at: int = 0

    def __iadd__(self, other: SweepResult) -> SweepResult:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


def sweep_recovery(
    *, now: datetime | None = None, batch_size: int = DEFAULT_BATCH, max_batches: int = 1000
) -> SweepResult:
    """Open, extend, reopen or resolve recovery cases for every customer whose due time passed."""
    now = now or timezone.now()
    total = SweepResult()
    for _ in range(max_batches):
        with transaction.atomic():
            ids = list(
                Customer.objects.filter(recovery_due_at__lte=now)
                .order_by("recovery_due_at")
                .select_for_update(skip_locked=True, no_key=True)
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                break
            total += _recovery_batch(ids, now=now)
        if len(ids) < batch_size:
            break
    return total


@dataclass
class _Plan:
    customer_id: int
    locked: LockedNarrative
    marks: dict


def _recovery_batch(customer_ids: list[int], *, now: datetime) -> SweepResult:
    result = SweepResult(looked_at=len(customer_ids))
    locked = lock_customers(customer_ids)
    people = {
        row["id"]: row
        for row in Customer.objects.filter(pk__in=customer_ids).values(
            "id", "name", "organization_id"
        )
    }
    orgs = {
        org.pk: org
        for org in Organization.objects.filter(
            pk__in={p["organization_id"] for p in people.values()}
        )
    }
    playbooks = playbook_specs(orgs)
    open_cases = {
        case.customer_id: case
        for case in RecoveryCase.objects.filter(
            customer_id__in=customer_ids, kind=CaseKind.RECOVERY, status=CaseStatus.OPEN
        )
    }
    episodes = _relevant_episodes(locked)
    recent_resolved = _recently_resolved(locked, open_cases)

    new_cases: list[tuple[RecoveryCase, list[Episode], list[str]]] = []
    changed_cases: list[RecoveryCase] = []
    triggers: list[CaseTrigger] = []
    events: list[CaseEvent] = []
    customer_marks: dict[int, dict] = {}

    for customer_id, row in locked.items():
        state = row.state
        mine = episodes.get(customer_id, [])
        case = open_cases.get(customer_id)
        handled = row.marks.recovery_handled_until
        if case is not None:
            follow_ups = [
                e
                for e in mine
                if e.kind in FOLLOW_UP_KINDS and (handled is None or e.occurred_at > handled)
            ]
            if follow_ups:
                follow_up = max(follow_ups, key=lambda e: (e.occurred_at, e.id))
                window = orgs[people[customer_id]["organization_id"]].recovery_outcome_window
                _resolve_by_follow_up(case, follow_up, now=now, window=window, events=events)
                changed_cases.append(case)
                customer_marks[customer_id] = {
                    "recovery_case_open": False,
                    "recovery_resolved_at": now,
                }
                result.resolved += 1
                continue
            fresh = _negatives(mine, after=handled)
            if fresh and is_unfollowed_negative(state):
                _deviate(case, fresh, now=now, events=events, triggers=triggers)
                changed_cases.append(case)
                customer_marks[customer_id] = {"recovery_handled_until": fresh[-1].occurred_at}
                result.deviations += 1
            else:
                customer_marks[customer_id] = {}
            continue

        negatives = _negatives(
            mine, after=max(filter(None, [handled, state.last_follow_up_at]), default=None)
        )
        if not (is_unfollowed_negative(state) and negatives):
            customer_marks[customer_id] = {}  # nothing to do any more: clear a stale due time
            continue
        previous = recent_resolved.get(customer_id)
        if previous is not None:
            _reopen(previous, negatives, now=now, events=events, triggers=triggers)
            changed_cases.append(previous)
            result.reopened += 1
        else:
            org = orgs[people[customer_id]["organization_id"]]
            ctx = _context(CaseKind.RECOVERY, negatives, people[customer_id], row, org)
            playbook = first_match(playbooks.get(org.pk, []), ctx)
            case = _new_case(org, customer_id, CaseKind.RECOVERY, playbook, ctx, negatives, now)
            new_cases.append((case, negatives, [render_action(t, ctx) for t in playbook.actions]))
            result.opened += 1
        customer_marks[customer_id] = {
            "recovery_case_open": True,
            "recovery_handled_until": negatives[-1].occurred_at,
        }

    _write(new_cases, changed_cases, triggers, events, now=now)
    _save_marks(locked, customer_marks, now=now)
    return result


def _relevant_episodes(locked: dict[int, LockedNarrative]) -> dict[int, list[_Ep]]:
    """Per customer, the negatives and follow-ups a decision may need, oldest first."""
    since: dict[int, datetime] = {}
    for customer_id, row in locked.items():
        anchor = row.state.last_negative_at or row.state.last_follow_up_at
        if anchor is not None:
            handled = row.marks.recovery_handled_until
            since[customer_id] = min(filter(None, [anchor - TRIGGER_LOOKBACK, handled]))
    if not since:
        return {}
    # One range over the batch (served by the customer timeline index); each customer's own
    # bound is applied here rather than as a thousand OR-ed conditions in SQL.
    rows = (
        Episode.objects.filter(customer_id__in=since, occurred_at__gte=min(since.values()))
        .filter(Q(experience__lt=0) | Q(kind__in=FOLLOW_UP_KINDS))
        .order_by("customer_id", "occurred_at", "id")
        .values_list(*_Ep.FIELDS)
    )
    out: dict[int, list[_Ep]] = defaultdict(list)
    for values in rows:
        episode = _Ep(*values)
        if episode.occurred_at >= since[episode.customer_id]:
            out[episode.customer_id].append(episode)
    return out


class _Ep(NamedTuple):
    """What a sweep decision needs of an episode: a row, not a model (thousands per batch)."""

    id: int
    customer_id: int
    kind: str
    occurred_at: datetime
    experience: int | None
    touchpoints: list
    location_id: int | None
    location_name: str | None
    location_tz: str | None


_Ep.FIELDS = (
    "id", "customer_id", "kind", "occurred_at", "experience", "touchpoints",
    "location_id", "location__name", "location__time_zone",
)  # fmt: skip


def _negatives(episodes: list[Episode], *, after: datetime | None) -> list[Episode]:
    return [
        e
        for e in episodes
        if e.experience is not None
        and e.experience < 0
        and (after is None or e.occurred_at > after)
    ]


def _recently_resolved(locked, open_cases) -> dict[int, RecoveryCase]:
    """Resolved cases that a new negative turns into a double deviation."""
    wanted = [
        customer_id
        for customer_id, row in locked.items()
        if customer_id not in open_cases
        and row.marks.recovery_resolved_at is not None
        and row.state.last_negative_at is not None
        and row.marks.recovery_resolved_at
        <= row.state.last_negative_at
        <= row.marks.recovery_resolved_at + row.policy.rerecovery_window
    ]
    if not wanted:
        return {}
    latest: dict[int, RecoveryCase] = {}
    for case in RecoveryCase.objects.filter(
        customer_id__in=wanted, kind=CaseKind.RECOVERY, status=CaseStatus.RESOLVED
    ).order_by("customer_id", "-resolved_at", "-id"):
        latest.setdefault(case.customer_id, case)
    return latest


def _context(kind, episodes, person, row: LockedNarrative, org) -> CaseContext:
    latest = episodes[-1] if episodes else None
    touchpoints = {t["code"] for e in episodes for t in e.touchpoints}
    third_party = {t["code"] for e in episodes for t in e.touchpoints if t.get("third_party")}
    experiences = [e.experience for e in episodes if e.experience is not None]
    return CaseContext(
        kind=kind,
        episode_kinds=frozenset(e.kind for e in episodes),
        touchpoints=frozenset(touchpoints),
        third_party_touchpoints=frozenset(third_party),
        worst_experience=min(experiences) if experiences else None,
        standing=standing_of(
            visit_count=row.state.visit_count,
            total_spend=Decimal(row.state.total_spend or 0),
            regular_visits=org.care_min_visits,
            high_spend=org.high_spender_spend,
        ),
        first_name=first_name_of(person["name"]),
        usual_order=row.state.usual_order,
        happened_at=latest.occurred_at if latest else None,
        time_zone=(latest.location_tz if latest and latest.location_tz else org.time_zone),
        location_name=latest.location_name if latest and latest.location_name else "",
    )


def _new_case(org, customer_id, kind, playbook: PlaybookSpec, ctx, episodes, now) -> RecoveryCase:
    latest = episodes[-1] if episodes else None
    return RecoveryCase(
        # Measured even if nobody follows up: the comparison group for the recovery lift.
        outcome_due_at=now + org.recovery_outcome_window,
        organization=org,
        customer_id=customer_id,
        kind=kind,
        status=CaseStatus.OPEN,
        severity=severity_for(ctx.worst_experience),
        playbook_id=playbook.id,
        location_id=latest.location_id if latest else None,
        touchpoints=sorted(ctx.touchpoints),
        worst_experience=ctx.worst_experience,
        show_at_visit=playbook.show_at_visit,
        opened_at=now,
        ack_due_at=now + playbook.ack_sla,
        due_at=now + playbook.resolve_sla,
        escalate_at=now + playbook.ack_sla,
    )


def _resolve_by_follow_up(case, follow_up, *, now, window, events) -> None:
    """A recovery or outreach episode logged for the customer closes the loop."""
    case.status = CaseStatus.RESOLVED
    case.resolved_at = now
    case.resolution_episode_id = follow_up.id
    case.escalate_at = None
    case.outcome_due_at = now + window
    events.append(case_event(case, CaseEventType.RESOLVED, at=now, episode=follow_up.id))


def _escalate_now(case, *, now, events, reason: str) -> None:
    case.severity = raised(case.severity)
    case.escalated_at = now
    case.escalate_at = None
    events.append(
        case_event(case, CaseEventType.ESCALATED, at=now, reason=reason, severity=case.severity)
    )


def _deviate(case, fresh: list[Episode], *, now, events, triggers) -> None:
    """Double deviation: another bad experience while the case is open."""
    worst = min(e.experience for e in fresh)
    case.worst_experience = min(filter(None, [case.worst_experience, worst]), default=worst)
    case.touchpoints = sorted(
        {*case.touchpoints, *(t["code"] for e in fresh for t in e.touchpoints)}
    )
    triggers += [CaseTrigger(case=case, episode_id=e.id, added_at=now) for e in fresh]
    events.append(case_event(case, CaseEventType.DEVIATION, at=now, episodes=[e.id for e in fresh]))
    _escalate_now(case, now=now, events=events, reason="another bad experience")


def _reopen(case, fresh: list[Episode], *, now, events, triggers) -> None:
    """Double deviation: a bad experience soon after the case was resolved."""
    case.status = CaseStatus.OPEN
    case.outcome = ""
    case.outcome_followed_up = None
    case.outcome_due_at = None  # the earlier recovery failed; measured again once resolved
    case.outcome_at = None
    case.opened_at = case.opened_at  # the original opening stays; the history says reopened
    events.append(case_event(case, CaseEventType.REOPENED, at=now, episodes=[e.id for e in fresh]))
    _deviate(case, fresh, now=now, events=events, triggers=triggers)


def _write(new_cases, changed_cases, triggers, events, *, now) -> None:
    if new_cases:
        # RETURNING gives the cases their ids in insertion order, for their children below.
        insert_rows(RecoveryCase, [case for case, _, _ in new_cases])
        actions, new_triggers = [], []
        for case, episodes, texts in new_cases:
            new_triggers += [
                CaseTrigger(case=case, episode_id=e.id, added_at=now) for e in episodes
            ]
            actions += [
                CaseAction(case=case, position=i, text=text) for i, text in enumerate(texts, 1)
            ]
            events.append(case_event(case, CaseEventType.OPENED, at=now))
        insert_rows(CaseAction, actions)
        insert_rows(CaseTrigger, new_triggers)
    for case in changed_cases:
        case.save()
    if triggers:
        # ignore_conflicts: a reopened case may already hold one of these episodes.
        CaseTrigger.objects.bulk_create(triggers, ignore_conflicts=True)
    insert_rows(CaseEvent, events)


def _save_marks(locked: dict[int, LockedNarrative], marks: dict[int, dict], *, now) -> None:
    """New case marks and the due times they imply, for the whole batch in one statement."""
    customers = []
    for customer_id, row in locked.items():
        new_marks = replace(row.marks, **marks.get(customer_id, {}))
        recovery_due, care_due = due_times(row.state, new_marks, row.policy)
        customer = Customer(pk=customer_id, recovery_due_at=recovery_due, care_due_at=care_due)
        for name, value in new_marks.__dict__.items():
            setattr(customer, name, value)
        customers.append(customer)
    update_rows(
        Customer,
        customers,
        [
            "recovery_due_at",
            "care_due_at",
            "recovery_case_open",
            "recovery_handled_until",
            "recovery_resolved_at",
            "care_case_open",
            "care_handled_until",
        ],
    )


# --- care ------------------------------------------------------------------------------------


def sweep_care(
    *, now: datetime | None = None, batch_size: int = DEFAULT_BATCH, max_batches: int = 1000
) -> SweepResult:
    """Open care cases for regulars gone quiet; resolve them when they visit or get a call."""
    now = now or timezone.now()
    total = SweepResult()
    for _ in range(max_batches):
        with transaction.atomic():
            ids = list(
                Customer.objects.filter(care_due_at__lte=now)
                .order_by("care_due_at")
                .select_for_update(skip_locked=True, no_key=True)
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                break
            total += _care_batch(ids, now=now)
        if len(ids) < batch_size:
            break
    return total


def _care_batch(customer_ids: list[int], *, now: datetime) -> SweepResult:
    result = SweepResult(looked_at=len(customer_ids))
    locked = lock_customers(customer_ids)
    people = {
        row["id"]: row
        for row in Customer.objects.filter(pk__in=customer_ids).values(
            "id", "name", "organization_id"
        )
    }
    orgs = {
        org.pk: org
        for org in Organization.objects.filter(
            pk__in={p["organization_id"] for p in people.values()}
        )
    }
    playbooks = playbook_specs(orgs)
    open_cases = {
        case.customer_id: case
        for case in RecoveryCase.objects.filter(
            customer_id__in=customer_ids, kind=CaseKind.CARE, status=CaseStatus.OPEN
        )
    }
    comebacks = _comebacks(locked, open_cases)
    new_cases, changed, events, marks = [], [], [], {}
    for customer_id, row in locked.items():
        org = orgs[people[customer_id]["organization_id"]]
        case = open_cases.get(customer_id)
        if case is not None:
            episode = comebacks.get(customer_id)
            if episode is not None:
                _resolve_by_follow_up(
                    case, episode, now=now, window=org.recovery_outcome_window, events=events
                )
                changed.append(case)
                marks[customer_id] = {"care_case_open": False}
                result.resolved += 1
            continue
        due = due_times(row.state, row.marks, row.policy)[1]
        if due is None or due > now:
            continue  # a stale due time: saving the marks below recomputes it
        ctx = _context(CaseKind.CARE, [], people[customer_id], row, org)
        playbook = first_match(playbooks.get(org.pk, []), ctx)
        case = _new_case(org, customer_id, CaseKind.CARE, playbook, ctx, [], now)
        case.touchpoints = []
        new_cases.append((case, [], [render_action(t, ctx) for t in playbook.actions]))
        marks[customer_id] = {"care_case_open": True, "care_handled_until": row.state.last_visit_at}
        result.opened += 1
    _write(new_cases, changed, [], events, now=now)
    _save_marks(locked, marks, now=now)
    return result


def _comebacks(locked, open_cases) -> dict[int, Episode]:
    """For open care cases: the visit or outreach since the case's last visit, if any."""
    match = Q()
    for customer_id in open_cases:
        handled = locked[customer_id].marks.care_handled_until
        match |= (
            Q(customer_id=customer_id, occurred_at__gt=handled)
            if handled
            else Q(customer_id=customer_id)
        )
    if not match:
        return {}
    found: dict[int, Episode] = {}
    for episode in (
        Episode.objects.filter(match)
        .filter(kind__in=[*VISIT_KINDS, *FOLLOW_UP_KINDS])
        .order_by("customer_id", "occurred_at", "id")
    ):
        found.setdefault(episode.customer_id, episode)
    return found

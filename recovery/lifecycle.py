"""The case lifecycle: the one place that decides when and why a case opens, grows, reopens,
is acknowledged, resolves, is dismissed or escalates.

Two halves, both free of queries:
- plans (`plan_recovery`, `plan_care`, `plan_escalation`): given a customer's narrative state,
  case marks and cases, what to do and *why*, as a value (`Reopen(reason=DOUBLE_DEVIATION)`);
- transitions (`open_case`, `extend`, `reopen`, `acknowledge`, `resolve`, `dismiss`,
  `escalate`, `remind`): carry a plan out on case rows in memory and return the history
  events and the customer's new case marks. Callers (the sweeps, the services, the
  escalation and reminder tasks) lock, save and commit; nothing else writes a case's status,
  reopening, escalation or resolution (tests/recovery/test_lifecycle_owner.py holds that).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from accounts.errors import ConflictError
from cxcore.rules import (
    CaseMarks,
    DuePolicy,
    DueReason,
    NarrativeState,
    is_regular,
    lapse_due,
    recovery_due,
)
from cxcore.vocabulary import FOLLOW_UP_KINDS
from recovery import care_reasons
from recovery.events import SYSTEM, Actor, actor_event
from recovery.models import (
    CareReason,
    CaseAction,
    CaseEvent,
    CaseEventType,
    CaseKind,
    CaseStatus,
    RecoveryCase,
)
from recovery.rules import PlaybookSpec, raised, severity_for


class Reason(StrEnum):
    """Why a transition happens; the value is what the case history records."""

    GRACE_PASSED = "grace period passed"
    DOUBLE_DEVIATION = "another bad experience"
    LATE_REPORT = "late report of the same experience"
    FOLLOW_UP = "follow-up logged"
    LAPSING = "regular gone quiet"
    DRIFTING = "regular's experiences drifting down"
    CAME_BACK = "came back or was contacted"
    ACK_OVERDUE = "acknowledgement overdue"
    RESOLUTION_OVERDUE = "resolution overdue"
    NOTHING_DUE = "nothing due yet"
    NOTHING_NEW = "nothing new since the case opened"
    BOOKED = "booked to come back"


class EpisodeFacts(Protocol):
    """What a plan needs of an episode (a sweep row or a model)."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def experience(self) -> int | None: ...
    @property
    def touchpoints(self) -> list[dict[str, Any]]: ...


# --- plans -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Open:
    kind: str
    reason: Reason
    triggers: tuple[EpisodeFacts, ...] = ()


@dataclass(frozen=True)
class Extend:
    """New negatives join the open case; those after it opened are deviations and escalate."""

    case_id: int
    reason: Reason
    triggers: tuple[EpisodeFacts, ...]
    deviations: tuple[EpisodeFacts, ...]


@dataclass(frozen=True)
class Reopen:
    case_id: int
    reason: Reason
    triggers: tuple[EpisodeFacts, ...]


@dataclass(frozen=True)
class Resolve:
    case_id: int
    reason: Reason
    episode_id: int
    at: datetime  # when the follow-up happened: the case is resolved as of then


@dataclass(frozen=True)
class Escalate:
    case_id: int
    reason: Reason


@dataclass(frozen=True)
class Remind:
    """They booked to come back while the case is open."""

    case_id: int
    reason: Reason
    reservation_id: int
    booking: str
    line: str


@dataclass(frozen=True)
class Nothing:
    reason: Reason


Plan = Open | Extend | Reopen | Resolve | Escalate | Nothing


def _after(t: datetime, bound: datetime | None) -> bool:
    return bound is None or t > bound


def _negatives(
    episodes: Sequence[EpisodeFacts], *, after: datetime | None
) -> tuple[EpisodeFacts, ...]:
    return tuple(
        e
        for e in episodes
        if e.experience is not None and e.experience < 0 and _after(e.occurred_at, after)
    )


def plan_recovery(
    *,
    state: NarrativeState,
    marks: CaseMarks,
    policy: DuePolicy,
    open_case: RecoveryCase | None,
    resolved_case: RecoveryCase | None,
    episodes: Sequence[EpisodeFacts],
    now: datetime,
) -> Plan:
    """What the recovery sweep does for one customer.

    `episodes`: their negatives and follow-ups that may matter, oldest first; `resolved_case`:
    the resolved case their marks name (recovery_resolved_at), if it still exists.
    """
    handled = marks.recovery_handled_until
    if open_case is not None:
        follow_ups = [
            e for e in episodes if e.kind in FOLLOW_UP_KINDS and _after(e.occurred_at, handled)
        ]
        if follow_ups:
            follow_up = max(follow_ups, key=lambda e: (e.occurred_at, e.id))
            return Resolve(open_case.pk, Reason.FOLLOW_UP, follow_up.id, follow_up.occurred_at)
        fresh = _negatives(episodes, after=handled)
        if not fresh:
            return Nothing(Reason.NOTHING_NEW)
        # A late report of the visit the case is about is not a second failure.
        deviations = tuple(e for e in fresh if e.occurred_at > open_case.opened_at)
        reason = Reason.DOUBLE_DEVIATION if deviations else Reason.LATE_REPORT
        return Extend(open_case.pk, reason, fresh, deviations)

    due = recovery_due(state, marks, policy)
    negatives = _negatives(
        episodes, after=max(filter(None, [handled, state.last_follow_up_at]), default=None)
    )
    if due is None or due.at > now or not negatives:
        return Nothing(Reason.NOTHING_DUE)
    if due.reason is DueReason.DOUBLE_DEVIATION:
        if resolved_case is not None:
            return Reopen(resolved_case.pk, Reason.DOUBLE_DEVIATION, negatives)
        return Open(CaseKind.RECOVERY, Reason.DOUBLE_DEVIATION, negatives)
    return Open(CaseKind.RECOVERY, Reason.GRACE_PASSED, negatives)


def plan_care(
    *,
    state: NarrativeState,
    marks: CaseMarks,
    policy: DuePolicy,
    open_case: RecoveryCase | None,
    comeback: EpisodeFacts | None,
    now: datetime,
    drifting: bool = False,
) -> Plan:
    """What the care sweep does for one customer. `comeback`: the first visit or outreach
    after the open care case's mark; `drifting`: `is_drifting` over the caller's rows. A lapse
    comes first; drift opens a case only for a regular."""
    if open_case is not None:
        if comeback is None:
            return Nothing(Reason.NOTHING_NEW)
        return Resolve(open_case.pk, Reason.CAME_BACK, comeback.id, comeback.occurred_at)
    lapse = lapse_due(state, marks, policy)
    if lapse is not None and lapse.at <= now:
        return Open(CaseKind.CARE, Reason.LAPSING)
    if drifting and is_regular(state, policy):
        return Open(CaseKind.CARE, Reason.DRIFTING)
    return Nothing(Reason.NOTHING_DUE)


def is_drifting(
    experiences: Sequence[int],
    *,
    newest_at: datetime | None,
    marks: CaseMarks,
    window: int,
    drop: int,
) -> bool:
    """Whether a regular's last experiences (oldest first, only those that carry one; the
    newest at `newest_at`) slide (recovery.care_reasons.drifting), counting only when the
    newest came after their last care case: one slide opens one care case."""
    handled = marks.care_handled_until
    if not experiences or newest_at is None or (handled is not None and newest_at <= handled):
        return False
    return care_reasons.drifting(experiences, window=window, drop=drop)


def plan_escalation(case: RecoveryCase, *, now: datetime) -> Escalate | Nothing:
    """An open case past the next SLA it can miss escalates, once per SLA."""
    if not case.is_open or case.escalate_at is None or case.escalate_at > now:
        return Nothing(Reason.NOTHING_DUE)
    overdue = Reason.ACK_OVERDUE if case.acknowledged_at is None else Reason.RESOLUTION_OVERDUE
    return Escalate(case.pk, overdue)


def require_open(case: RecoveryCase) -> None:
    """Staff act only on open cases; anything else is a conflict (409)."""
    if not case.is_open:
        raise ConflictError(f"The case is {case.status} already.", field="status", code="not_open")


# --- draws ---------------------------------------------------------------------------------


# Why a care case opened, as the case records it.
CARE_REASONS = {Reason.LAPSING: CareReason.LAPSING, Reason.DRIFTING: CareReason.DRIFTING}


@dataclass(frozen=True)
class Draw:
    """A case's random draws, replayed by `draw(seed, ...)` from the seed recorded on it."""

    seed: int
    held_out: bool
    variant_id: int | None


def draw_seed(*, organization_id: int, customer_id: int, opened_at: datetime) -> int:
    """A case's seed: 63 bits of a hash of who and when, so it fits a signed bigint and a
    replay needs only the row. Not secret: nobody gains by predicting a holdout."""
    key = f"{organization_id}:{customer_id}:{opened_at.isoformat()}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") >> 1


def holdout_share_for(*, kind: str, care_reason: str, holdout_share: int) -> int:
    """The share a case's holdout is drawn with: the organization's for a lapsing regular's
    care case, else 0. A bad experience is always worked; a drifting regular still comes in,
    so whether they came back says nothing about care (the comparison counts lapsing ones
    only) and holding them out would only withhold care."""
    if kind == CaseKind.CARE and care_reason == CareReason.LAPSING:
        return holdout_share
    return 0


def draw(seed: int, *, kind: str, holdout_share: int, variant_ids: Sequence[int]) -> Draw:
    """Held out or not, then which variant, from one generator in a fixed order.

    The holdout number is drawn for every case and the variant index whenever there are two
    or more variants, so each draw's position in the stream never depends on the other's
    result. Only care cases are ever held out (a bad experience is always worked), and a
    held-out case gets no variant: nobody carries one out."""
    rng = random.Random(seed)
    held_out = rng.random() < holdout_share / 100 and kind == CaseKind.CARE
    variant_id = variant_ids[rng.randrange(len(variant_ids))] if len(variant_ids) >= 2 else None
    return Draw(seed, held_out, None if held_out else variant_id)


# --- transitions -----------------------------------------------------------------------------


@dataclass
class Applied:
    """What a transition produced beside the case row: history and the customer's marks."""

    events: list[CaseEvent] = field(default_factory=list)
    marks: dict[str, Any] = field(default_factory=dict)


def open_case(
    plan: Open,
    *,
    organization_id: int,
    customer_id: int,
    playbook: PlaybookSpec,
    worst_experience: int | None,
    touchpoints: Collection[str],
    location_id: int | None,
    handled_until: datetime | None,
    outcome_window: timedelta,
    now: datetime,
    holdout_share: int = 0,
    variant_ids: Sequence[int] = (),
    why_now: str = "",
) -> tuple[RecoveryCase, Applied]:
    """A new open case; `handled_until` is the mark after which episodes are news to it (the
    newest trigger for recovery, the last visit or follow-up for care).

    Its draws (`draw`) are made here and recorded with their seed: a held-out care case (a
    lapsing regular's only, `holdout_share_for`) is kept like any other, and measured, but
    never shown, escalated or notified. `variant_ids`:
    the playbook's active variants in order while its experiment runs (else empty)."""
    care_reason = CARE_REASONS.get(plan.reason, "") if plan.kind == CaseKind.CARE else ""
    share = holdout_share_for(kind=plan.kind, care_reason=care_reason, holdout_share=holdout_share)
    seed = draw_seed(organization_id=organization_id, customer_id=customer_id, opened_at=now)
    drawn = draw(seed, kind=plan.kind, holdout_share=share, variant_ids=variant_ids)
    case = RecoveryCase(
        organization_id=organization_id,
        customer_id=customer_id,
        kind=plan.kind,
        status=CaseStatus.OPEN,
        severity=severity_for(worst_experience),
        playbook_id=playbook.id,
        location_id=location_id,
        touchpoints=sorted(touchpoints),
        worst_experience=worst_experience,
        show_at_visit=playbook.show_at_visit and not drawn.held_out,
        opened_at=now,
        ack_due_at=now + playbook.ack_sla,
        due_at=now + playbook.resolve_sla,
        # A held-out case has no SLA to miss: nobody is meant to work it.
        escalate_at=None if drawn.held_out else now + playbook.ack_sla,
        # Measured even if nobody follows up: the comparison group for the recovery lift.
        outcome_due_at=now + outcome_window,
        held_out=drawn.held_out,
        draw_seed=drawn.seed,
        holdout_share=share,
        variant_id=drawn.variant_id,
        care_reason=care_reason,
        why_now=why_now[:200],
    )
    drawn_data: dict[str, Any] = {"held_out": True} if drawn.held_out else {}
    if drawn.variant_id is not None:
        drawn_data["variant"] = drawn.variant_id
    opened = actor_event(case, CaseEventType.OPENED, SYSTEM, at=now, **drawn_data)
    applied = Applied(events=[opened])
    if plan.kind == CaseKind.RECOVERY:
        applied.marks = {"recovery_case_open": True, "recovery_handled_until": handled_until}
    else:
        applied.marks = {"care_case_open": True, "care_handled_until": handled_until}
    return case, applied


# What `escalate` changes, for callers that save cases in bulk.
ESCALATED_FIELDS = ("severity", "escalated_at", "escalate_at", "escalation_notified_at")


def escalate(case: RecoveryCase, plan: Escalate, *, now: datetime) -> Applied:
    """One step more severe, escalated now, no further SLA to miss, and tell them (again)."""
    case.severity = raised(case.severity)
    case.escalated_at = now
    case.escalate_at = None
    case.escalation_notified_at = None
    event = actor_event(
        case, CaseEventType.ESCALATED, SYSTEM, at=now, reason=plan.reason, severity=case.severity
    )
    return Applied(events=[event])


def extend(case: RecoveryCase, plan: Extend, *, now: datetime) -> Applied:
    """The new negatives join the case (the caller links them as triggers)."""
    worst = min(e.experience for e in plan.triggers if e.experience is not None)
    case.worst_experience = min(v for v in (case.worst_experience, worst) if v is not None)
    case.touchpoints = sorted(
        {*case.touchpoints, *(t["code"] for e in plan.triggers for t in e.touchpoints)}
    )
    applied = Applied(marks={"recovery_handled_until": plan.triggers[-1].occurred_at})
    if plan.deviations:
        applied.events.append(
            actor_event(
                case,
                CaseEventType.DEVIATION,
                SYSTEM,
                at=now,
                episodes=[e.id for e in plan.deviations],
            )
        )
        applied.events += escalate(case, Escalate(case.pk, plan.reason), now=now).events
    return applied


def reopen(
    case: RecoveryCase, plan: Reopen, *, outcome_window: timedelta, now: datetime
) -> Applied:
    """Double deviation: a bad experience soon after the case was resolved reopens it,
    escalated, with fresh deadlines."""
    resolve_sla = case.due_at - case.opened_at
    case.status = CaseStatus.OPEN
    case.reopened_at = now
    case.resolved_at = None
    case.resolution_episode = None
    case.closed_by = None
    case.ack_due_at = now
    case.due_at = now + resolve_sla
    case.restart_outcome(due=now + outcome_window)
    applied = Applied(
        events=[
            actor_event(
                case,
                CaseEventType.REOPENED,
                SYSTEM,
                at=now,
                episodes=[e.id for e in plan.triggers],
            )
        ]
    )
    # Every negative here came after the case first opened: extending escalates once.
    grown = extend(case, Extend(case.pk, plan.reason, plan.triggers, plan.triggers), now=now)
    applied.events += grown.events
    applied.marks = {"recovery_case_open": True, **grown.marks}
    return applied


# What `remind` changes, for callers that save the case.
REMINDED_FIELDS = ("ack_due_at", "due_at")


def remind(case: RecoveryCase, plan: Remind, *, now: datetime) -> Applied:
    """They are coming back: the case's next deadline is now, so the queue shows it overdue
    before they arrive. Escalation keeps its own clock: a booking is news to pass on, not a
    missed deadline, and the reminder is its own notification."""
    require_open(case)
    if case.acknowledged_at is None:
        case.ack_due_at = min(case.ack_due_at, now)
    else:
        case.due_at = min(case.due_at, now)
    event = actor_event(
        case,
        CaseEventType.REMINDER,
        SYSTEM,
        at=now,
        episode=plan.reservation_id,
        booking=plan.booking,
        line=plan.line,
    )
    return Applied(events=[event])


def suggest(
    case: RecoveryCase, texts: Sequence[str], *, now: datetime, after_position: int = 0
) -> list[CaseAction]:
    """The playbook's actions for this case, as suggested now (after any earlier ones)."""
    return [
        CaseAction(case=case, position=after_position + i, text=text, added_at=now)
        for i, text in enumerate(texts, 1)
    ]


def current_actions(case: RecoveryCase, actions: Sequence[CaseAction]) -> list[CaseAction]:
    """What staff may still tick: untaken actions suggested since the case last (re)opened."""
    since = case.reopened_at or case.opened_at
    return [a for a in actions if a.taken_at is None and (a.added_at or since) >= since]


def acknowledge(case: RecoveryCase, *, actor: Actor, now: datetime) -> Applied:
    """Someone owns it: the escalation clock moves on to the resolution SLA (once)."""
    require_open(case)
    if case.acknowledged_at is not None:
        return Applied()
    case.acknowledged_at = now
    case.acknowledged_by = actor.user
    case.last_acted_at = now
    if case.escalated_at is None:
        case.escalate_at = case.due_at
    return Applied(events=[actor_event(case, CaseEventType.ACKNOWLEDGED, actor, at=now)])


def not_now(case: RecoveryCase, *, actor: Actor, now: datetime) -> Applied:
    """Staff could not act this time: the case stays open and shows again next visit."""
    require_open(case)
    case.last_acted_at = now
    return Applied(events=[actor_event(case, CaseEventType.NOT_NOW, actor, at=now, where=True)])


def resolve(
    case: RecoveryCase,
    plan: Resolve,
    *,
    outcome_window: timedelta,
    now: datetime,
    actor: Actor = SYSTEM,
    where: bool = False,
    **event_data: Any,
) -> Applied:
    """A follow-up closes the loop, as of when it happened; the outcome is measured again from
    then, in the followed-up cohort."""
    require_open(case)
    case.status = CaseStatus.RESOLVED
    case.resolved_at = plan.at
    case.last_acted_at = now
    case.resolution_episode_id = plan.episode_id
    case.escalate_at = None
    case.closed_by = actor.user
    case.restart_outcome(due=plan.at + outcome_window)
    event = actor_event(
        case,
        CaseEventType.RESOLVED,
        actor,
        at=now,
        where=where,
        episode=plan.episode_id,
        **event_data,
    )
    if case.kind == CaseKind.RECOVERY:
        marks: dict[str, Any] = {"recovery_case_open": False, "recovery_resolved_at": plan.at}
    else:
        marks = {"care_case_open": False}
    return Applied(events=[event], marks=marks)


def dismiss(case: RecoveryCase, *, reason: str, actor: Actor, now: datetime) -> Applied:
    """Closed without a follow-up; what it covered stays handled."""
    require_open(case)
    case.status = CaseStatus.DISMISSED
    case.dismissed_at = now
    case.last_acted_at = now
    case.dismiss_reason = reason.strip()[:500]
    case.escalate_at = None
    case.closed_by = actor.user
    event = actor_event(case, CaseEventType.DISMISSED, actor, at=now, reason=case.dismiss_reason)
    open_mark = "recovery_case_open" if case.kind == CaseKind.RECOVERY else "care_case_open"
    return Applied(events=[event], marks={open_mark: False})

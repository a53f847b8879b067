"""The lifecycle's plans, each with its reason, from plain values (no database)."""

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import NamedTuple

import pytest

from accounts.errors import ConflictError
from cxcore.rules import CaseMarks, DuePolicy, DueReason, NarrativeState, recovery_due
from recovery import lifecycle
from recovery.events import Actor
from recovery.lifecycle import Extend, Nothing, Open, Reason, Reopen, Resolve
from recovery.models import CaseStatus, RecoveryCase

T0 = datetime(2026, 11, 13, 12, 0, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


class Ep(NamedTuple):
    id: int
    kind: str
    occurred_at: datetime
    experience: int | None
    touchpoints: list = []


def negative_state(at=T0, **fields):
    return NarrativeState(
        last_experience=-2, last_experience_at=at, last_negative_at=at, visit_count=3, **fields
    )


def case(pk=7, status=CaseStatus.OPEN, opened_at=T0 + 2 * HOUR, kind="recovery", **fields):
    fields = {
        "ack_due_at": opened_at + 4 * HOUR,
        "due_at": opened_at + 2 * DAY,
        "escalate_at": opened_at + 4 * HOUR,
        **fields,
    }
    return RecoveryCase(
        pk=pk,
        kind=kind,
        status=status,
        severity=3,
        opened_at=opened_at,
        touchpoints=["order_accuracy"],
        worst_experience=-2,
        **fields,
    )


NO_MARKS = CaseMarks()


def plan(state, marks=NO_MARKS, *, grace=2 * HOUR, now, episodes, open_case=None, resolved=None):
    return lifecycle.plan_recovery(
        state=state,
        marks=marks,
        policy=DuePolicy(grace=grace),
        open_case=open_case,
        resolved_case=resolved,
        episodes=episodes,
        now=now,
    )


COMPLAINT = Ep(1, "complaint", T0, -2, [{"code": "order_accuracy"}])


def test_a_negative_opens_a_case_once_the_grace_period_has_passed():
    assert plan(negative_state(), now=T0 + HOUR, episodes=[COMPLAINT]) == Nothing(
        Reason.NOTHING_DUE
    )
    assert plan(negative_state(), now=T0 + 2 * HOUR, episodes=[COMPLAINT]) == Open(
        "recovery", Reason.GRACE_PASSED, (COMPLAINT,)
    )


def test_the_due_rule_says_why_not_only_when():
    resolved_long_ago = CaseMarks(recovery_resolved_at=T0 - 180 * DAY)
    resolved_lately = CaseMarks(recovery_resolved_at=T0 - 3 * DAY)
    no_grace = DuePolicy(grace=timedelta(0))
    # With no grace period both are due at the negative itself: only the reason tells them apart.
    long_ago = recovery_due(negative_state(), resolved_long_ago, no_grace)
    lately = recovery_due(negative_state(), resolved_lately, no_grace)
    assert long_ago is not None and long_ago.reason is DueReason.GRACE_PASSED
    assert lately is not None and lately.reason is DueReason.DOUBLE_DEVIATION


@pytest.mark.parametrize("grace", [timedelta(0), 2 * HOUR])
@pytest.mark.parametrize(
    ("days", "expected"),
    [(29, Reopen), (30, Reopen), (31, Open), (180, Open)],
)
def test_a_negative_within_thirty_days_of_a_resolution_reopens_that_case(grace, days, expected):
    previous = case(status=CaseStatus.RESOLVED, resolved_at=T0)
    again = T0 + days * DAY
    complaint = Ep(9, "complaint", again, -1)
    marks = CaseMarks(recovery_handled_until=T0 - HOUR, recovery_resolved_at=T0)
    result = plan(
        negative_state(again, last_follow_up_at=T0),
        marks,
        grace=grace,
        now=again + grace,
        episodes=[Ep(8, "recovery", T0, None), complaint],
        resolved=previous,
    )
    assert type(result) is expected
    assert result.triggers == (complaint,)
    assert result.reason is (Reason.DOUBLE_DEVIATION if expected is Reopen else Reason.GRACE_PASSED)


def test_a_double_deviation_whose_case_is_gone_opens_a_new_one():
    marks = CaseMarks(recovery_resolved_at=T0 - 3 * DAY)
    assert plan(negative_state(), marks, now=T0, episodes=[COMPLAINT]) == Open(
        "recovery", Reason.DOUBLE_DEVIATION, (COMPLAINT,)
    )


def test_a_follow_up_resolves_the_open_case_as_of_when_it_happened():
    covered = CaseMarks(recovery_case_open=True, recovery_handled_until=T0)
    call = Ep(2, "outreach", T0 + DAY, None)
    result = plan(
        negative_state(last_follow_up_at=T0 + DAY),
        covered,
        now=T0 + 2 * DAY,
        episodes=[COMPLAINT, call],
        open_case=case(),
    )
    assert result == Resolve(7, Reason.FOLLOW_UP, 2, T0 + DAY)


def test_a_late_report_joins_the_case_and_a_new_failure_escalates_it():
    covered = CaseMarks(recovery_case_open=True, recovery_handled_until=T0)
    late = Ep(3, "feedback", T0 + HOUR, -1)  # the same visit, reported before the case opened
    again = Ep(4, "complaint", T0 + 3 * DAY, -1)
    open_case = case()
    assert plan(
        negative_state(T0 + HOUR), covered, now=T0 + 3 * HOUR, episodes=[late], open_case=open_case
    ) == Extend(7, Reason.LATE_REPORT, (late,), ())
    assert plan(
        negative_state(again.occurred_at),
        covered,
        now=T0 + 4 * DAY,
        episodes=[late, again],
        open_case=open_case,
    ) == Extend(7, Reason.DOUBLE_DEVIATION, (late, again), (again,))


def test_an_open_case_with_nothing_new_is_left_alone():
    covered = CaseMarks(recovery_case_open=True, recovery_handled_until=T0)
    assert plan(
        negative_state(), covered, now=T0 + DAY, episodes=[COMPLAINT], open_case=case()
    ) == Nothing(Reason.NOTHING_NEW)


def test_care_opens_for_a_regular_gone_quiet_and_resolves_when_they_come_back():
    regular = NarrativeState(visit_count=6, first_visit_at=T0, last_visit_at=T0 + 35 * DAY)
    policy = DuePolicy()
    plan_care = partial(
        lifecycle.plan_care,
        state=regular,
        marks=CaseMarks(),
        policy=policy,
        open_case=None,
        comeback=None,
    )
    assert plan_care(now=T0 + 40 * DAY) == Nothing(Reason.NOTHING_DUE)
    assert plan_care(now=T0 + 60 * DAY) == Open("care", Reason.LAPSING)
    visit = Ep(5, "visit", T0 + 70 * DAY, None)
    care = case(pk=11, kind="care")
    assert plan_care(open_case=care, comeback=visit, now=T0 + 71 * DAY) == Resolve(
        11, Reason.CAME_BACK, 5, visit.occurred_at
    )


def test_a_slide_counts_as_drift_once_per_care_case():
    drifting = partial(lifecycle.is_drifting, window=3, drop=2)
    slide, newest = [2, 1, 0], T0 + 30 * DAY
    assert drifting(slide, newest_at=newest, marks=CaseMarks())
    assert not drifting([2, 2, 1], newest_at=newest, marks=CaseMarks())  # not far enough
    assert not drifting([], newest_at=None, marks=CaseMarks())
    # Its newest experience was before the last care case (which it opened): not again.
    cared = CaseMarks(care_handled_until=newest)
    assert not drifting(slide, newest_at=newest, marks=cared)
    assert drifting(slide, newest_at=newest + HOUR, marks=cared)
    regular = NarrativeState(visit_count=6, first_visit_at=T0, last_visit_at=T0 + 35 * DAY)
    plan = lifecycle.plan_care(
        state=regular,
        marks=CaseMarks(),
        policy=DuePolicy(),
        open_case=None,
        comeback=None,
        now=T0 + 36 * DAY,
        drifting=drifting(slide, newest_at=newest, marks=CaseMarks()),
    )
    assert plan == Open("care", Reason.DRIFTING)


def test_escalation_names_the_missed_sla_and_happens_once():
    open_case = case()
    late = open_case.escalate_at + HOUR
    assert lifecycle.plan_escalation(open_case, now=late) == lifecycle.Escalate(
        7, Reason.ACK_OVERDUE
    )
    applied = lifecycle.escalate(open_case, lifecycle.Escalate(7, Reason.ACK_OVERDUE), now=late)
    assert (open_case.severity, open_case.escalated_at, open_case.escalate_at) == (4, late, None)
    assert applied.events[0].data == {"reason": Reason.ACK_OVERDUE, "severity": 4}
    assert lifecycle.plan_escalation(open_case, now=late + DAY) == Nothing(Reason.NOTHING_DUE)

    acknowledged = case(acknowledged_at=T0 + 3 * HOUR, escalate_at=T0 + 2 * DAY)
    assert lifecycle.plan_escalation(acknowledged, now=T0 + 3 * DAY).reason is (
        Reason.RESOLUTION_OVERDUE
    )


def test_reopening_restarts_the_deadlines_and_escalates_once():
    previous = case(status=CaseStatus.RESOLVED, resolved_at=T0 + DAY)
    again = Ep(9, "complaint", T0 + 5 * DAY, -1, [{"code": "wait"}])
    now = again.occurred_at + HOUR
    applied = lifecycle.reopen(
        previous, Reopen(7, Reason.DOUBLE_DEVIATION, (again,)), outcome_window=30 * DAY, now=now
    )
    assert previous.status == CaseStatus.OPEN and previous.resolved_at is None
    assert (previous.ack_due_at, previous.due_at) == (now, now + 2 * DAY)
    assert previous.touchpoints == ["order_accuracy", "wait"] and previous.severity == 4
    assert [e.type for e in applied.events] == ["reopened", "deviation", "escalated"]
    assert applied.marks == {"recovery_case_open": True, "recovery_handled_until": now - HOUR}


def test_staff_act_only_on_open_cases():
    closed = case(status=CaseStatus.DISMISSED)
    with pytest.raises(ConflictError):
        lifecycle.dismiss(closed, reason="again", actor=Actor(), now=T0)
    with pytest.raises(ConflictError):
        lifecycle.resolve(
            closed, Resolve(7, Reason.FOLLOW_UP, 1, T0), outcome_window=30 * DAY, now=T0
        )

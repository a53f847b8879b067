"""What the sweep does equals what the lifecycle plans, for random narratives, grace periods
(0 included) and staff actions in any order; and the double-deviation window is honoured.

The plan is computed here from the database as the test reads it (not through the sweep's
own reads), then the sweep runs and its effect on the cases is compared with the plan.
"""

from datetime import UTC, datetime, timedelta

from django.db import transaction
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from cxcore.models import Customer, Episode
from cxcore.rules import CaseMarks, DuePolicy, NarrativeState
from cxcore.services import EpisodeInput, record_episode
from cxcore.vocabulary import FOLLOW_UP_KINDS
from recovery import lifecycle
from recovery.escalation import escalate_overdue
from recovery.models import CaseKind, CaseStatus, RecoveryCase
from recovery.services import dismiss_case, resolve_case
from recovery.sweep import TRIGGER_LOOKBACK, sweep_recovery
from tests.factories import CustomerFactory

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WINDOW = DuePolicy().rerecovery_window

# (kind, experience): bad, good and neutral experiences, and follow-ups.
EPISODES = [
    ("complaint", -2),
    ("feedback", -1),
    ("visit", 1),
    ("visit", None),
    ("compliment", 2),
    ("recovery", None),
    ("outreach", None),
]
WAITS = [timedelta(minutes=10), timedelta(hours=1), timedelta(hours=3), timedelta(days=1)]
WAITS += [timedelta(days=d) for d in (10, 29, 31, 45)]

# A round: maybe an episode (back-dated or not), time passing, then the sweep or a staff action.
rounds = st.lists(
    st.tuples(
        st.one_of(
            st.none(),
            st.tuples(
                st.sampled_from(EPISODES),
                st.sampled_from([timedelta(0), timedelta(hours=1), timedelta(days=2)]),
            ),
        ),
        st.sampled_from(WAITS),
        st.sampled_from(["sweep", "sweep", "sweep", "resolve", "dismiss", "escalate", None]),
    ),
    min_size=1,
    max_size=12,
)


def window_case(days: int) -> list:
    complaint = (("complaint", -2), timedelta(0))
    return [
        (complaint, timedelta(days=1), "sweep"),
        (None, timedelta(hours=1), "resolve"),
        (None, timedelta(days=days), None),
        (complaint, timedelta(minutes=10), "sweep"),
    ]


graces = st.sampled_from([timedelta(0), timedelta(hours=2), timedelta(days=1)])


def snapshot(customer):
    return {
        case.pk: (
            case.status,
            case.severity,
            case.escalated_at,
            case.resolved_at,
            case.resolution_episode_id,
            frozenset(case.triggers.values_list("pk", flat=True)),
        )
        for case in RecoveryCase.objects.filter(customer=customer, kind=CaseKind.RECOVERY)
    }


def planned(customer, now):
    """The lifecycle's plan from the customer's row, cases and episodes as they are now."""
    row = Customer.objects.select_related("organization").get(pk=customer.pk)
    marks = CaseMarks(**{name: getattr(row, name) for name in CaseMarks.__dataclass_fields__})
    cases = RecoveryCase.objects.filter(customer=row, kind=CaseKind.RECOVERY)
    open_case = cases.filter(status=CaseStatus.OPEN).first()
    resolved = None
    if open_case is None and marks.recovery_resolved_at is not None:
        resolved = (
            cases.filter(status=CaseStatus.RESOLVED, resolved_at=marks.recovery_resolved_at)
            .order_by("-id")
            .first()
        )
    state = NarrativeState.of(row)
    anchor = state.last_negative_at or state.last_follow_up_at
    episodes = []
    if anchor is not None:
        since = min(filter(None, [anchor - TRIGGER_LOOKBACK, marks.recovery_handled_until]))
        episodes = [
            e
            for e in Episode.objects.filter(customer=row, occurred_at__gte=since).order_by(
                "occurred_at", "id"
            )
            if (e.experience is not None and e.experience < 0) or e.kind in FOLLOW_UP_KINDS
        ]
    plan = lifecycle.plan_recovery(
        state=state,
        marks=marks,
        policy=DuePolicy.of(row.organization),
        open_case=open_case,
        resolved_case=resolved,
        episodes=episodes,
        now=now,
    )
    return row, plan, resolved


def check_sweep_does_what_was_planned(customer, now):
    row, plan, resolved = planned(customer, now)
    event(f"{type(plan).__name__}: {plan.reason}")
    if row.recovery_due_at is None or row.recovery_due_at > now:
        # Not due: the sweep will not look, so the lifecycle must have nothing to do either
        # (invariant 5: the due time on the row is kept current by every write).
        assert isinstance(plan, lifecycle.Nothing), (plan, row.recovery_due_at, now)
    before = snapshot(customer)
    result = sweep_recovery(now=now)
    after = snapshot(customer)
    counted = (result.opened, result.reopened, result.resolved)

    # The double-deviation window, said independently of the due time's encoding.
    if resolved is not None and not any(s[0] == "open" for s in before.values()):
        last_negative = row.last_negative_at
        within = resolved.resolved_at <= last_negative <= resolved.resolved_at + WINDOW
        if isinstance(plan, lifecycle.Open | lifecycle.Reopen):
            assert isinstance(plan, lifecycle.Reopen) == within

    match plan:
        case lifecycle.Nothing():
            assert after == before and counted == (0, 0, 0)
        case lifecycle.Open():
            new = set(after) - set(before)
            assert len(new) == 1 and counted == (1, 0, 0)
            (case_id,) = new
            assert after[case_id][0] == "open"
            assert after[case_id][5] == {e.id for e in plan.triggers}
        case lifecycle.Reopen():
            assert set(after) == set(before) and counted == (0, 1, 0)
            status, _, escalated_at, resolved_at, _, triggers = after[plan.case_id]
            assert (status, escalated_at, resolved_at) == ("open", now, None)
            assert triggers == before[plan.case_id][5] | {e.id for e in plan.triggers}
        case lifecycle.Resolve():
            assert set(after) == set(before) and counted == (0, 0, 1)
            status, _, _, resolved_at, episode_id, _ = after[plan.case_id]
            assert (status, resolved_at, episode_id) == ("resolved", plan.at, plan.episode_id)
        case lifecycle.Extend():
            assert set(after) == set(before) and counted == (0, 0, 0)
            _, _, escalated_at, _, _, triggers = after[plan.case_id]
            assert triggers == before[plan.case_id][5] | {e.id for e in plan.triggers}
            assert (escalated_at == now) == bool(plan.deviations)
            assert result.deviations == (1 if plan.deviations else 0)
        case _:
            raise AssertionError(plan)


def check_narrative_agrees_with_cases(customer):
    row = Customer.objects.get(pk=customer.pk)
    open_cases = RecoveryCase.objects.filter(customer=row, kind=CaseKind.RECOVERY, status="open")
    assert open_cases.count() <= 1
    assert row.recovery_case_open == open_cases.exists()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=rounds, grace=graces)
# The window's edges, with and without grace: open, resolve at the till, a new complaint.
@example(sequence=window_case(29), grace=timedelta(0))
@example(sequence=window_case(31), grace=timedelta(0))
@example(sequence=window_case(31), grace=timedelta(hours=2))
def test_the_sweep_carries_out_the_lifecycle_plan_whatever_happens(org, sequence, grace):
    savepoint = transaction.savepoint()
    try:
        org.recovery_grace_period = grace
        org.save(update_fields=["recovery_grace_period"])
        customer = CustomerFactory.create(organization=org, name="Daniel Reyes")
        now = T0
        for logged, wait, action in sequence:
            if logged is not None:
                (kind, experience), back = logged
                record_episode(
                    organization=org,
                    data=EpisodeInput(
                        kind=kind,
                        customer_id=customer.pk,
                        occurred_at=now - back,
                        experience=experience,
                        touchpoints=[{"code": "wait", "third_party": False}],
                    ),
                    now=now,
                )
            now += wait
            open_case = RecoveryCase.objects.filter(
                customer=customer, kind=CaseKind.RECOVERY, status=CaseStatus.OPEN
            ).first()
            match action:
                case "sweep":
                    check_sweep_does_what_was_planned(customer, now)
                case "resolve" if open_case is not None:
                    resolve_case(case=open_case, note="Comped a latte", now=now)
                    assert RecoveryCase.objects.get(pk=open_case.pk).resolved_at == now
                case "dismiss" if open_case is not None:
                    dismiss_case(case=open_case, reason="Spoke to them", now=now)
                case "escalate":
                    expected = {
                        c.pk
                        for c in RecoveryCase.objects.filter(customer=customer, status="open")
                        if isinstance(lifecycle.plan_escalation(c, now=now), lifecycle.Escalate)
                    }
                    assert escalate_overdue(now=now) == len(expected)
                    escalated = RecoveryCase.objects.filter(customer=customer, escalated_at=now)
                    assert {c.pk for c in escalated} >= expected
            check_narrative_agrees_with_cases(customer)
        now += timedelta(days=2)  # whatever is left, past every grace period
        check_sweep_does_what_was_planned(customer, now)
        check_narrative_agrees_with_cases(customer)
    finally:
        transaction.savepoint_rollback(savepoint)

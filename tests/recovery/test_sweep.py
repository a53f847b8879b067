import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from cxcore.models import Customer, Episode
from recovery.models import CaseEventType, CaseStatus, RecoveryCase
from recovery.sweep import sweep_recovery
from tests.factories import CustomerFactory
from tests.recovery.conftest import T0, forgotten_order, log


def test_a_negative_experience_opens_a_case_once_the_grace_period_has_passed(
    org, main_st, playbooks, dan
):
    complaint = forgotten_order(org, dan, main_st)
    dan.refresh_from_db()
    assert dan.recovery_due_at == complaint.occurred_at + org.recovery_grace_period

    assert sweep_recovery(now=complaint.occurred_at + timedelta(hours=1)).opened == 0
    result = sweep_recovery(now=complaint.occurred_at + timedelta(hours=2, minutes=1))
    assert (result.opened, result.looked_at) == (1, 1)

    case = RecoveryCase.objects.get()
    assert (case.kind, case.status, case.severity) == ("recovery", "open", 3)
    assert case.playbook is not None
    assert case.playbook.name == "Order mix-up"
    assert list(case.triggers.all()) == [complaint]
    assert case.location == main_st and case.touchpoints == ["order_accuracy"]
    assert [a.text for a in case.actions.all()] == [
        "Apologise to Daniel by name for the order mix-up on Fri 13 Nov",
        "Comp their usual Almond-milk latte",
        "Read the order back at the till",
    ]
    assert case.events.get().type == CaseEventType.OPENED
    dan.refresh_from_db()
    assert dan.recovery_case_open and dan.recovery_due_at is None
    assert dan.recovery_handled_until == complaint.occurred_at


def test_a_follow_up_within_the_grace_period_means_no_case(org, dan):
    complaint = forgotten_order(org, dan)
    log(org, dan, complaint.occurred_at + timedelta(minutes=20), kind="recovery", summary="Sorry!")
    dan.refresh_from_db()
    assert dan.recovery_due_at is None
    assert sweep_recovery(now=complaint.occurred_at + timedelta(days=1)).opened == 0


def test_sweeping_again_opens_nothing_more(org, dan):
    complaint = forgotten_order(org, dan)
    later = complaint.occurred_at + timedelta(hours=3)
    assert sweep_recovery(now=later).opened == 1
    assert sweep_recovery(now=later + timedelta(minutes=1)).looked_at == 0
    log(org, dan, later + timedelta(hours=1), kind="visit")  # a visit does not re-arm it
    assert sweep_recovery(now=later + timedelta(hours=2)).opened == 0
    assert RecoveryCase.objects.count() == 1


def test_a_later_positive_visit_does_not_close_the_case(org, dan):
    complaint = forgotten_order(org, dan)
    sweep_recovery(now=complaint.occurred_at + timedelta(hours=3))
    log(org, dan, complaint.occurred_at + timedelta(days=2), kind="visit", experience=1)
    sweep_recovery(now=complaint.occurred_at + timedelta(days=2, hours=3))
    assert RecoveryCase.objects.get().status == CaseStatus.OPEN


def test_a_follow_up_logged_anywhere_resolves_the_open_case_at_the_next_sweep(org, dan):
    complaint = forgotten_order(org, dan)
    sweep_recovery(now=complaint.occurred_at + timedelta(hours=3))
    call = log(
        org, dan, complaint.occurred_at + timedelta(hours=5), kind="outreach", summary="Called"
    )
    dan.refresh_from_db()
    assert dan.recovery_due_at == call.occurred_at
    assert sweep_recovery(now=call.occurred_at + timedelta(minutes=1)).resolved == 1
    case = RecoveryCase.objects.get()
    assert (case.status, case.resolution_episode) == ("resolved", call)
    assert case.outcome_due_at == case.resolved_at + org.recovery_outcome_window
    dan.refresh_from_db()
    assert not dan.recovery_case_open and dan.recovery_due_at is None


def test_another_bad_experience_on_an_open_case_escalates_it_at_once(org, dan):
    complaint = forgotten_order(org, dan)
    sweep_recovery(now=complaint.occurred_at + timedelta(hours=3))
    again = log(
        org, dan, complaint.occurred_at + timedelta(days=1), kind="feedback", experience=-1,
        touchpoints=[{"code": "wait", "third_party": False}],
    )  # fmt: skip
    dan.refresh_from_db()
    assert dan.recovery_due_at == again.occurred_at  # no grace for a double deviation
    assert sweep_recovery(now=again.occurred_at + timedelta(minutes=1)).deviations == 1
    case = RecoveryCase.objects.get()
    assert case.severity == 4 and case.escalated_at is not None
    assert set(case.triggers.all()) == {complaint, again}
    assert case.touchpoints == ["order_accuracy", "wait"]
    assert {"deviation", "escalated"} <= set(case.events.values_list("type", flat=True))


def test_a_bad_experience_soon_after_a_recovery_reopens_that_case_escalated(org, dan):
    complaint = forgotten_order(org, dan)
    sweep_recovery(now=complaint.occurred_at + timedelta(hours=3))
    log(org, dan, complaint.occurred_at + timedelta(hours=5), kind="recovery")
    sweep_recovery(now=complaint.occurred_at + timedelta(hours=6))
    relapse = log(
        org, dan, complaint.occurred_at + timedelta(days=5), kind="complaint", experience=-1
    )
    dan.refresh_from_db()
    assert dan.recovery_due_at == relapse.occurred_at
    assert sweep_recovery(now=relapse.occurred_at + timedelta(minutes=1)).reopened == 1
    case = RecoveryCase.objects.get()
    assert case.status == "open" and case.escalated_at is not None
    assert "reopened" in set(case.events.values_list("type", flat=True))


def test_one_open_case_per_customer_and_kind_is_enforced_by_the_database(org, dan):
    complaint = forgotten_order(org, dan)
    sweep_recovery(now=complaint.occurred_at + timedelta(hours=3))
    duplicate = RecoveryCase.objects.get()
    duplicate.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()


def test_a_sweep_with_nothing_due_reads_only_the_index(org, dan, django_assert_num_queries):
    log(org, dan, T0, kind="visit", experience=1)
    # savepoint, the due query, release; and one upsert saying the sweep ran (for /readyz)
    with django_assert_num_queries(4):
        assert sweep_recovery(now=T0 + timedelta(days=1)).looked_at == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_open_exactly_one_case_per_customer(org):
    customers = [CustomerFactory(organization=org) for _ in range(120)]
    for customer in customers:
        log(org, customer, T0, kind="complaint", experience=-1)
    barrier = threading.Barrier(4)

    def sweep(_):
        try:
            barrier.wait(timeout=10)
            return sweep_recovery(now=T0 + timedelta(hours=3), batch_size=25).opened
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        opened = list(pool.map(sweep, range(4)))
    assert sum(opened) == 120
    assert RecoveryCase.objects.count() == 120
    assert not Customer.objects.filter(recovery_due_at__isnull=False).exists()
    assert Customer.objects.filter(recovery_case_open=True).count() == 120
    assert Episode.objects.count() == 120


def test_the_sweep_command_says_what_it_opened(org, dan):
    from io import StringIO

    from django.core.management import call_command

    forgotten_order(org, dan)  # three hours ago in T0 terms: long past its grace period
    out = StringIO()
    call_command("sweep", stdout=out)
    assert out.getvalue().startswith("opened 1 recovery cases and 0 care cases")


def test_reconcile_repairs_case_marks_and_the_due_times_they_imply(org, dan):
    from recovery.reconcile import reconcile

    complaint = forgotten_order(org, dan)
    sweep_recovery(now=complaint.occurred_at + timedelta(hours=3))
    Customer.objects.filter(pk=dan.pk).update(
        recovery_case_open=False,
        recovery_due_at=complaint.occurred_at,  # drifted both ways
    )
    result = reconcile()
    assert result["marks_repaired"] == 1 and result["narratives_repaired"] == 1
    dan.refresh_from_db()
    assert dan.recovery_case_open and dan.recovery_due_at is None
    assert reconcile() == {"marks_repaired": 0, "customers_checked": 1, "narratives_repaired": 0}


def _resolved_then_complaint(org, dan, *, days_after_resolution):
    """A case opened, recovered and resolved by the sweep; then a new complaint."""
    complaint = forgotten_order(org, dan)
    sweep_recovery(now=complaint.occurred_at + org.recovery_grace_period + timedelta(minutes=1))
    recovery_at = complaint.occurred_at + timedelta(hours=5)
    log(org, dan, recovery_at, kind="recovery", summary="Comped his latte")
    assert sweep_recovery(now=recovery_at + timedelta(minutes=1)).resolved == 1
    again_at = recovery_at + timedelta(days=days_after_resolution)
    log(org, dan, again_at, kind="complaint", experience=-1, summary="Cold food")
    return sweep_recovery(now=again_at + org.recovery_grace_period + timedelta(minutes=1))


def test_with_no_grace_period_a_complaint_months_after_a_recovery_opens_a_new_case(org, dan):
    """The grace-0 reproduction: the due time then equals the negative's time, which the sweep
    once read as "double deviation" and reopened the old case."""
    org.recovery_grace_period = timedelta(0)
    org.save(update_fields=["recovery_grace_period"])
    result = _resolved_then_complaint(org, dan, days_after_resolution=180)
    assert (result.opened, result.reopened) == (1, 0)
    assert list(RecoveryCase.objects.order_by("pk").values_list("status", flat=True)) == [
        "resolved",
        "open",
    ]


@pytest.mark.parametrize("grace_hours", [0, 2])
@pytest.mark.parametrize(("days", "reopened"), [(29, True), (30, True), (31, False)])
def test_the_double_deviation_window_is_thirty_days_from_the_resolution(
    org, dan, grace_hours, days, reopened
):
    org.recovery_grace_period = timedelta(hours=grace_hours)
    org.save(update_fields=["recovery_grace_period"])
    result = _resolved_then_complaint(org, dan, days_after_resolution=days)
    assert (result.opened, result.reopened) == ((0, 1) if reopened else (1, 0))
    assert RecoveryCase.objects.count() == (1 if reopened else 2)

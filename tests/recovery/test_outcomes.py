"""Outcomes on constructed histories where the right answer is known by hand."""

from datetime import timedelta

from recovery.models import RecoveryCase
from recovery.outcomes import measure_outcomes
from recovery.services import dismiss_case, resolve_case
from recovery.sweep import sweep_recovery
from tests.factories import CustomerFactory
from tests.recovery.conftest import T0, log


def a_case(org, name):
    customer = CustomerFactory.create(organization=org, name=name)
    log(org, customer, T0, kind="complaint", experience=-1)
    sweep_recovery(now=T0 + timedelta(hours=3))
    return RecoveryCase.objects.get(customer=customer)


def test_outcomes_by_what_customers_did_afterwards(org):
    day = timedelta(days=1)
    happy, unhappy, lost, dismissed, _silent = (
        a_case(org, n) for n in ("Happy", "Unhappy", "Lost", "Dismissed", "Silent")
    )
    for case in (happy, unhappy, lost):
        resolve_case(case=case, note="called", now=T0 + day)
    dismiss_case(case=dismissed, reason="no contact details", now=T0 + day)
    log(org, happy.customer, T0 + 5 * day, kind="visit", experience=1)
    log(org, unhappy.customer, T0 + 6 * day, kind="visit")
    log(org, unhappy.customer, T0 + 6 * day + timedelta(minutes=5), kind="feedback", experience=-1)
    log(org, dismissed.customer, T0 + 7 * day, kind="order")

    assert measure_outcomes(now=T0 + 10 * day) == {"recovered": 2, "came_back_unhappy": 1}
    assert measure_outcomes(now=T0 + 40 * day) == {"lost": 2}
    outcomes = {
        c.customer.name: (c.outcome, c.outcome_followed_up) for c in RecoveryCase.objects.all()
    }
    assert outcomes == {
        "Happy": ("recovered", True),
        "Unhappy": ("came_back_unhappy", True),
        "Lost": ("lost", True),
        "Dismissed": ("recovered", False),  # came back without a follow-up
        "Silent": ("lost", False),  # still open, never followed up, never came back
    }
    assert measure_outcomes(now=T0 + 80 * day) == {}


def test_a_visit_after_the_window_still_counts_as_lost(org):
    case = a_case(org, "Late")
    resolve_case(case=case, now=T0 + timedelta(days=1))
    log(org, case.customer, T0 + timedelta(days=45), kind="visit")
    assert measure_outcomes(now=T0 + timedelta(days=46)) == {"lost": 1}


def test_a_visit_while_the_case_is_open_waits_for_the_case_to_close(org):
    case = a_case(org, "Till")
    log(org, case.customer, T0 + timedelta(days=1), kind="visit")  # came in, nobody acted
    assert measure_outcomes(now=T0 + timedelta(days=2)) == {}  # still being worked
    resolve_case(case=case, note="apologised at the till", now=T0 + timedelta(days=3))
    log(org, case.customer, T0 + timedelta(days=9), kind="order", experience=1)
    assert measure_outcomes(now=T0 + timedelta(days=10)) == {"recovered": 1}
    case.refresh_from_db()
    assert case.outcome_followed_up is True


def test_each_case_of_one_customer_is_measured_from_its_own_time(org):
    first = a_case(org, "Twice")
    resolve_case(case=first, now=T0 + timedelta(days=1))
    customer = first.customer
    log(org, customer, T0 + timedelta(days=40), kind="complaint", experience=-2)
    sweep_recovery(now=T0 + timedelta(days=40, hours=3))
    second = RecoveryCase.objects.exclude(pk=first.pk).get(customer=customer)
    resolve_case(case=second, now=T0 + timedelta(days=41))
    log(org, customer, T0 + timedelta(days=45), kind="visit", experience=1)
    counts = measure_outcomes(now=T0 + timedelta(days=46))
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.outcome, second.outcome) == ("lost", "recovered")
    assert counts == {"lost": 1, "recovered": 1}

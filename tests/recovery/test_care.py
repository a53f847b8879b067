from datetime import timedelta

from cxcore.models import Customer
from recovery.models import RecoveryCase
from recovery.sweep import sweep_care
from tests.factories import CustomerFactory
from tests.recovery.conftest import T0, log


def weekly_regular(org, visits=6, name="Grace Hopper"):
    customer = CustomerFactory.create(organization=org, name=name)
    for week in range(visits):
        log(org, customer, T0 + timedelta(weeks=week), kind="order",
            items=[{"name": "Flat white", "quantity": 1, "price": "3.20"}])  # fmt: skip
    customer.refresh_from_db()
    return customer


def test_a_regular_gone_quiet_gets_one_care_case(org, playbooks):
    regular = weekly_regular(org)
    last = regular.last_visit_at
    assert regular.care_due_at == last + timedelta(weeks=3)  # 3 × a weekly rhythm
    assert sweep_care(now=last + timedelta(weeks=2)).opened == 0
    assert sweep_care(now=last + timedelta(weeks=3, hours=1)).opened == 1
    assert sweep_care(now=last + timedelta(weeks=4)).opened == 0
    case = RecoveryCase.objects.get()
    assert case.playbook is not None
    assert (case.kind, case.severity, case.playbook.name) == ("care", 1, "Regular gone quiet")
    # Something staff can do at the counter when the regular walks back in.
    action = case.actions.first()
    assert action is not None
    assert action.text == "Welcome Grace back by name and ask how they have been"
    regular.refresh_from_db()
    assert regular.care_case_open and regular.care_due_at is None


def test_occasional_customers_get_no_care_case(org, playbooks):
    occasional = weekly_regular(org, visits=3)
    assert occasional.care_due_at is None
    assert sweep_care(now=T0 + timedelta(days=365)).looked_at == 0


def test_the_care_case_resolves_when_they_come_back_and_the_rhythm_restarts(org, playbooks):
    regular = weekly_regular(org)
    lapse = regular.last_visit_at + timedelta(weeks=3, hours=1)
    sweep_care(now=lapse)
    back = log(org, regular, lapse + timedelta(days=2), kind="visit")
    assert sweep_care(now=back.occurred_at + timedelta(minutes=1)).resolved == 1
    case = RecoveryCase.objects.get()
    assert case.status == "resolved" and case.resolution_episode == back
    regular = Customer.objects.get(pk=regular.pk)
    assert not regular.care_case_open
    assert regular.care_due_at is not None and regular.care_due_at > back.occurred_at


def test_an_outreach_resolves_the_care_case_but_care_waits_for_a_new_visit(org, playbooks):
    regular = weekly_regular(org)
    lapse = regular.last_visit_at + timedelta(weeks=3, hours=1)
    sweep_care(now=lapse)
    call = log(org, regular, lapse + timedelta(hours=2), kind="outreach", summary="We miss you")
    assert sweep_care(now=call.occurred_at + timedelta(minutes=1)).resolved == 1
    regular.refresh_from_db()
    assert regular.care_due_at is None  # lapsing again needs a visit first
    assert sweep_care(now=lapse + timedelta(weeks=10)).opened == 0

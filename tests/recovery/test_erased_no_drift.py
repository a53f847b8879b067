"""An erased customer gets no new case of any kind: drift included (issue 16)."""

from datetime import timedelta

from cxcore.models import Customer
from cxcore.privacy import erase_customer
from recovery.models import RecoveryCase
from recovery.sweep import sweep_care
from tests.factories import CustomerFactory
from tests.recovery.conftest import T0, log


def test_an_erased_regular_whose_feedback_slid_gets_no_drifting_case(org, main_st, playbooks):
    ann = CustomerFactory.create(organization=org, name="Ann Lee")
    for week in range(8):
        visit = T0 + timedelta(weeks=week)
        log(org, ann, visit, kind="visit")
        if week >= 5:  # a feedback form two hours after each of the last three visits
            log(org, ann, visit + timedelta(hours=2), kind="feedback", experience=7 - week)
    erase_customer(customer=Customer.objects.get(pk=ann.pk), reason="Asked to be forgotten")

    ann.refresh_from_db()
    last_feedback = T0 + timedelta(weeks=7, hours=2)
    assert ann.care_due_at is None or ann.care_due_at > last_feedback + timedelta(days=7)
    sweep_care(now=last_feedback + timedelta(minutes=1))
    assert not RecoveryCase.objects.filter(customer_id=ann.pk).exists()

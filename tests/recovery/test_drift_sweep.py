"""Drift reaches the care sweep on its own (issue 16): a regular whose experiences slide while
they still come in is looked at once, at the experience that could end the slide."""

from datetime import timedelta

from django.db import transaction
from django.test import Client
from django.urls import reverse

from cxcore.models import Customer
from cxcore.rules import DueReason, care_due
from cxcore.services import rebuild_narrative
from cxcore.services.episodes import lock_customers
from recovery.models import RecoveryCase
from recovery.selectors import case_lines
from recovery.sweep import sweep_care
from tests.factories import CustomerFactory
from tests.recovery.conftest import T0, log


def weekly_regular(org, name, experiences):
    """Eight weekly visits, the last ones carrying `experiences` (oldest first)."""
    customer = CustomerFactory.create(organization=org, name=name)
    visits = [T0 - timedelta(weeks=8 - n) for n in range(8)]
    rated = dict(zip(visits[-len(experiences) :], experiences, strict=True))
    for at in visits:
        extra = {"experience": rated[at]} if at in rated else {}
        log(org, customer, at, kind="visit", **extra)
    return Customer.objects.get(pk=customer.pk)


def due_reason(customer):
    with transaction.atomic():
        row = lock_customers([customer.pk])[customer.pk]
    due = care_due(row.state, row.marks, row.policy)
    return due.reason if due else None


def test_a_slide_makes_the_regular_due_at_once_and_the_sweep_opens_a_drifting_case(
    org, main_st, playbooks, staff
):
    ann = weekly_regular(org, "Ann Lee", [2, 1, 0])
    assert ann.care_due_at == ann.last_experience_at  # not weeks away at the lapse
    assert due_reason(ann) == DueReason.DRIFT_CHECK

    sweep_care(now=T0 + timedelta(minutes=1))

    case = RecoveryCase.objects.get(customer=ann, kind="care")
    assert case.care_reason == "drifting"
    assert case.why_now
    # The queue's line and the till's prompt say what slid, not only the rhythm.
    (line,) = case_lines([case], now=T0 + timedelta(minutes=1))
    assert line.headline == "Ann — recent visits going less well, last here 7 days ago"
    # At the till, a regular who still comes is checked in with, not missed.
    till = Client()
    till.force_login(staff)
    page = till.get(reverse("pos-customer", args=[ann.pk])).content.decode()
    assert "Check in with them" in page
    assert "We miss them" not in page
    assert not rebuild_narrative(customer_id=ann.pk, now=T0 + timedelta(minutes=1))


def test_a_steady_regular_is_looked_at_once_then_left_to_the_lapse_rule(org, main_st, playbooks):
    ben = weekly_regular(org, "Ben Okafor", [1, 1, 1])
    assert due_reason(ben) == DueReason.DRIFT_CHECK

    first = sweep_care(now=T0 + timedelta(minutes=1))
    ben.refresh_from_db()

    assert first.looked_at == 1
    assert not RecoveryCase.objects.filter(customer=ben).exists()
    assert ben.drift_checked_until == ben.last_experience_at
    assert due_reason(ben) == DueReason.LAPSING
    assert ben.care_due_at == ben.last_visit_at + timedelta(weeks=3)  # 3 × a weekly rhythm
    assert sweep_care(now=T0 + timedelta(minutes=2)).looked_at == 0
    # What the sweep left is what a rebuild from the episodes and marks gives.
    assert not rebuild_narrative(customer_id=ben.pk, now=T0 + timedelta(minutes=2))


def test_a_negative_or_a_top_mark_is_no_drift_check(org, main_st, playbooks):
    for experiences in ([2, 2, 2], [1, 0, -1]):
        customer = weekly_regular(org, f"Guest {experiences}", experiences)
        assert due_reason(customer) != DueReason.DRIFT_CHECK

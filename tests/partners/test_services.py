from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection

from accounts.errors import ConflictError, InvalidInput
from partners.models import PartnerIncident
from partners.services import (
    answer_incident,
    create_partner,
    dispute_incident,
    fix_incident,
    open_incidents_for,
    update_partner,
)
from recovery.models import RecoveryCase
from recovery.sweep import sweep_recovery
from tests.factories import CustomerFactory
from tests.partners.conftest import DELIVERY, T0, bad_valet, open_beside_case
from tests.recovery.conftest import log


def test_a_partner_keeps_its_contact_normalised(valet):
    assert valet.contact_email == "ops@swiftvalet.example"
    assert valet.contact_phone == "+442079460018"
    assert valet.touchpoints == ["parking_valet"] and valet.is_active


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "  ", "touchpoints": ["delivery"]}, "name"),
        ({"name": "X", "touchpoints": []}, "touchpoints"),
        ({"name": "X", "touchpoints": ["valet"]}, "touchpoints"),
        ({"name": "X", "touchpoints": "delivery"}, "touchpoints"),
        ({"name": "X", "touchpoints": ["delivery"], "contact_email": "nope"}, "contact_email"),
        ({"name": "X", "touchpoints": ["delivery"], "contact_phone": "12"}, "contact_phone"),
        ({"name": "X", "touchpoints": ["delivery"], "colour": "red"}, "colour"),
        ({"name": "X\u202e", "touchpoints": ["delivery"]}, "name"),
        ({"name": "X" * 101, "touchpoints": ["delivery"]}, "name"),
    ],
)
def test_bad_partner_fields_are_refused_naming_the_field(org, fields, field):
    with pytest.raises(InvalidInput) as caught:
        create_partner(organization=org, fields=fields)
    assert caught.value.field == field


def test_a_touchpoint_is_run_by_one_active_partner_at_most(org, valet):
    with pytest.raises(InvalidInput) as caught:
        create_partner(
            organization=org, fields={"name": "Other valet", "touchpoints": ["parking_valet"]}
        )
    assert caught.value.field == "touchpoints"
    assert "Parking / valet is run by Swift Valet Co already" in caught.value.message
    # Once the first is inactive, the touchpoint is free; making it active again is refused.
    update_partner(partner=valet, fields={"is_active": False})
    other = create_partner(
        organization=org, fields={"name": "Other valet", "touchpoints": ["parking_valet"]}
    )
    with pytest.raises(InvalidInput, match="run by Other valet"):
        update_partner(partner=valet, fields={"is_active": True})
    assert other.is_active


def test_partner_names_are_unique_per_organization_whatever_the_case(org, other_org, valet):
    with pytest.raises(InvalidInput) as caught:
        create_partner(organization=org, fields={"name": "swift valet co", "touchpoints": ["wait"]})
    assert caught.value.field == "name"
    create_partner(
        organization=other_org, fields={"name": "Swift Valet Co", "touchpoints": ["wait"]}
    )


def test_a_bad_valet_night_opens_an_incident_beside_the_recovery_case(org, main_st, valet):
    margaret = CustomerFactory.create(organization=org, name="Margaret Lyon")
    complaint = bad_valet(org, margaret, T0, main_st)

    case, opened = open_beside_case(complaint, T0 + timedelta(hours=3))

    (incident,) = opened
    assert incident.pk is not None
    incident = PartnerIncident.objects.get()
    assert (incident.partner, incident.customer, incident.episode) == (valet, margaret, complaint)
    assert incident.recovery_case == case and incident.location == main_st
    assert incident.status == "open" and incident.touchpoints == ["parking_valet"]
    assert incident.occurred_at == complaint.occurred_at and incident.experience == -2
    # The guest relationship stays with the business: the case is the customer's as ever.
    assert case.customer == margaret and case.touchpoints == ["parking_valet"]


def test_opening_again_adds_nothing(org, valet):
    margaret = CustomerFactory.create(organization=org)
    complaint = bad_valet(org, margaret, T0)
    case, _ = open_beside_case(complaint, T0 + timedelta(hours=3))
    assert open_incidents_for(links=[(case, [complaint])], now=T0 + timedelta(hours=4)) == []
    assert PartnerIncident.objects.count() == 1


def test_only_negatives_on_a_partner_run_touchpoint_open_incidents(org, valet, courier):
    margaret = CustomerFactory.create(organization=org)
    wait = log(org, margaret, T0, kind="complaint", experience=-1,
               touchpoints=[{"code": "wait", "third_party": False}])  # fmt: skip
    happy = log(org, margaret, T0, kind="feedback", experience=1, touchpoints=DELIVERY)
    # Not flagged as third party by the till: the partner record says who runs it.
    late = log(org, margaret, T0, kind="order", experience=-1,
               touchpoints=[{"code": "delivery", "third_party": False}])  # fmt: skip
    case, _ = open_beside_case(wait, T0 + timedelta(hours=3))
    PartnerIncident.objects.all().delete()  # what the sweep opened: opened again below
    opened = open_incidents_for(links=[(case, [wait, happy, late])], now=T0 + timedelta(hours=3))
    assert [(i.partner, i.episode) for i in opened] == [(courier, late)]


def test_an_inactive_partner_or_another_organizations_opens_nothing(org, other_org, valet):
    update_partner(partner=valet, fields={"is_active": False})
    create_partner(
        organization=other_org, fields={"name": "Theirs", "touchpoints": ["parking_valet"]}
    )
    margaret = CustomerFactory.create(organization=org)
    _, opened = open_beside_case(bad_valet(org, margaret, T0), T0 + timedelta(hours=3))
    assert opened == [] and not PartnerIncident.objects.exists()


def test_opening_costs_two_queries_for_a_whole_batch(
    org, valet, courier, django_assert_num_queries
):
    people = [CustomerFactory.create(organization=org) for _ in range(5)]
    episodes = [
        bad_valet(org, person, T0 + timedelta(minutes=i)) for i, person in enumerate(people)
    ]
    sweep_recovery(now=T0 + timedelta(hours=3))
    cases = {c.customer_id: c for c in RecoveryCase.objects.all()}
    PartnerIncident.objects.all().delete()  # what the sweep opened: opened again below
    links = [(cases[e.customer_id], [e]) for e in episodes]
    with django_assert_num_queries(2):
        assert len(open_incidents_for(links=links, now=T0 + timedelta(hours=3))) == 5
    plain = log(org, people[0], T0, kind="complaint", experience=-2)
    with django_assert_num_queries(0):
        assert open_incidents_for(links=[(cases[people[0].pk], [plain])], now=T0) == []


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_racing_open_one_incident(org, valet):
    margaret = CustomerFactory.create(organization=org)
    complaint = bad_valet(org, margaret, T0)
    case, _ = open_beside_case(complaint, T0 + timedelta(hours=3))
    PartnerIncident.objects.all().delete()

    def race(_):
        try:
            return len(open_incidents_for(links=[(case, [complaint])], now=T0))
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        opened = list(pool.map(race, range(4)))
    assert sorted(opened) == [0, 0, 0, 1]
    assert PartnerIncident.objects.count() == 1


@pytest.fixture
def incident(org, valet):
    margaret = CustomerFactory.create(organization=org)
    _, (opened,) = open_beside_case(bad_valet(org, margaret, T0), T0 + timedelta(hours=3))
    return opened


def test_the_partners_answer_then_fix_close_the_incident(incident, owner):
    later = T0 + timedelta(hours=27)
    answered = answer_incident(
        incident=incident, answer="Driver short-staffed", by=owner, now=later
    )
    assert answered.status == "answered" and answered.answered_at == later
    assert answered.answered_by == owner and answered.answer == "Driver short-staffed"
    # Saying more keeps the time of the first answer.
    answer_incident(incident=incident, answer="Two more drivers Fridays", by=owner,
                    now=later + timedelta(hours=1))  # fmt: skip
    fixed = fix_incident(incident=incident, by=owner, now=later + timedelta(days=2))
    assert fixed.status == "fixed" and fixed.answered_at == later
    assert fixed.closed_at == later + timedelta(days=2) and fixed.closed_by == owner
    assert fixed.answer == "Two more drivers Fridays"
    with pytest.raises(ConflictError) as caught:
        dispute_incident(incident=incident, by=owner, note="Not us")
    assert caught.value.field == "status" and "fixed already" in caught.value.message


def test_a_fix_or_a_dispute_is_the_first_answer_when_nothing_came_before(incident, owner):
    at = T0 + timedelta(hours=10)
    disputed = dispute_incident(incident=incident, by=owner, note="Car park's own staff", now=at)
    assert (disputed.status, disputed.answered_at, disputed.closed_at) == ("disputed", at, at)


@pytest.mark.parametrize("answer", ["", "   ", "x" * 2001, "bad\x00", "flip\u202e"])
def test_a_bad_answer_is_refused_naming_it_and_changes_nothing(incident, owner, answer):
    with pytest.raises(InvalidInput) as caught:
        answer_incident(incident=incident, answer=answer, by=owner)
    assert caught.value.field == "answer"
    incident.refresh_from_db()
    assert incident.status == "open" and incident.answered_at is None


def test_a_dispute_needs_the_partners_reason(incident, owner):
    with pytest.raises(InvalidInput) as caught:
        dispute_incident(incident=incident, by=owner, note="")
    assert caught.value.field == "answer"


def test_a_merge_keeps_the_duplicates_incidents_on_the_survivor(org, incident):
    from recovery.services import merge_customers

    into = CustomerFactory.create(organization=org, name="Margaret Lyon")
    merge_customers(into=into, duplicate=incident.customer)
    incident.refresh_from_db()
    assert incident.customer == into and incident.status == "open"

from datetime import timedelta

from cxcore.privacy import ERASED, erase_customer
from partners.models import PartnerIncident
from partners.services import answer_incident
from tests.factories import CustomerFactory
from tests.partners.conftest import T0, bad_valet, open_beside_case


def test_an_erasure_clears_what_the_partner_said_and_keeps_the_incident(org, valet, owner):
    margaret = CustomerFactory.create(organization=org, name="Margaret Lyon")
    _, (incident,) = open_beside_case(bad_valet(org, margaret, T0), T0 + timedelta(hours=3))
    answer_incident(incident=incident, answer="Mrs Lyon's car was parked on level 3", by=owner)
    other = CustomerFactory.create(organization=org)
    _, (theirs,) = open_beside_case(bad_valet(org, other, T0), T0 + timedelta(hours=3))
    answer_incident(incident=theirs, answer="Sorry", by=owner)

    erasure = erase_customer(customer=margaret, reason="asked by email")

    assert erasure.cleared["partner_incident_answers"] == 1
    incident.refresh_from_db()
    assert incident.answer == ERASED and incident.status == "answered"
    assert PartnerIncident.objects.get(pk=theirs.pk).answer == "Sorry"


def test_retention_clears_the_answers_of_incidents_closed_before_the_cutoff(org, valet, owner):
    from cxcore.retention import clear_old_text
    from partners.services import fix_incident

    org.text_retention_days = 30
    org.save(update_fields=["text_retention_days"])
    people = [CustomerFactory.create(organization=org) for _ in range(3)]
    incidents = []
    for person in people:
        _, (incident,) = open_beside_case(bad_valet(org, person, T0), T0 + timedelta(hours=3))
        incidents.append(incident)
    old, recent, still_open = incidents
    fix_incident(incident=old, by=owner, note="Repaired", now=T0 + timedelta(days=1))
    fix_incident(incident=recent, by=owner, note="Repaired", now=T0 + timedelta(days=50))
    answer_incident(incident=still_open, answer="Looking into it", by=owner, now=T0)

    cleared = clear_old_text(now=T0 + timedelta(days=60))

    assert cleared["partner_incident_answers"] == 1
    answers = dict(PartnerIncident.objects.values_list("pk", "answer"))
    assert answers == {old.pk: ERASED, recent.pk: "Repaired", still_open.pk: "Looking into it"}

"""The real sweep opens partner incidents beside the cases it opens, extends and reopens
(`open_incidents_for(links=self.took, now=self.now)` in recovery/sweep.py's `_Batch.write`).
Were that call taken out, these would skip, saying so, and the rest of tests/partners would
fail where it expects the sweep's incidents."""

from datetime import timedelta

from partners.models import PartnerIncident
from recovery.models import RecoveryCase
from recovery.services import resolve_case
from recovery.sweep import sweep_recovery
from tests.factories import CustomerFactory
from tests.partners.conftest import T0, bad_valet
from tests.recovery.conftest import log


def test_the_sweep_opens_the_incident_beside_the_case(org, main_st, valet):
    margaret = CustomerFactory.create(organization=org, name="Margaret")
    complaint = bad_valet(org, margaret, T0, main_st)
    assert sweep_recovery(now=T0 + timedelta(hours=3)).opened == 1
    case = RecoveryCase.objects.get(customer=margaret)
    incident = PartnerIncident.objects.get()
    assert (incident.partner, incident.episode, incident.recovery_case) == (valet, complaint, case)
    assert incident.location == main_st and incident.status == "open"
    # Another run, or the same episode again, adds nothing.
    sweep_recovery(now=T0 + timedelta(hours=4))
    assert PartnerIncident.objects.count() == 1


def test_a_second_failure_extends_the_case_and_opens_a_second_incident(org, valet):
    margaret = CustomerFactory.create(organization=org)
    bad_valet(org, margaret, T0)
    sweep_recovery(now=T0 + timedelta(hours=3))
    again = bad_valet(org, margaret, T0 + timedelta(days=1))
    sweep_recovery(now=T0 + timedelta(days=1, hours=3))
    assert RecoveryCase.objects.count() == 1
    assert PartnerIncident.objects.filter(episode=again).count() == 1
    assert PartnerIncident.objects.count() == 2


def test_a_failure_after_a_recovery_reopens_the_case_and_opens_an_incident(org, valet):
    margaret = CustomerFactory.create(organization=org)
    bad_valet(org, margaret, T0)
    sweep_recovery(now=T0 + timedelta(hours=3))
    resolve_case(case=RecoveryCase.objects.get(), note="Called her", now=T0 + timedelta(hours=5))
    again = bad_valet(org, margaret, T0 + timedelta(days=2))
    sweep_recovery(now=T0 + timedelta(days=2, hours=3))
    assert PartnerIncident.objects.filter(episode=again).exists()


def test_a_bad_experience_elsewhere_opens_a_case_and_no_incident(org, valet):
    margaret = CustomerFactory.create(organization=org)
    log(org, margaret, T0, kind="complaint", experience=-2,
        touchpoints=[{"code": "wait", "third_party": False}])  # fmt: skip
    assert sweep_recovery(now=T0 + timedelta(hours=3)).opened == 1
    assert not PartnerIncident.objects.exists()

"""A customer's data export lists the partner incidents about them, and no one else's."""

import json
from datetime import timedelta

from cxcore.privacy import export_customer
from partners.models import PartnerIncident
from recovery.sweep import sweep_recovery
from tests.factories import CustomerFactory
from tests.partners.conftest import T0, bad_valet


def test_the_export_lists_the_customers_partner_incidents(org, main_st, valet):
    margaret = CustomerFactory.create(organization=org, name="Margaret")
    other = CustomerFactory.create(organization=org, name="Neighbour")
    bad_valet(org, margaret, T0, main_st)
    bad_valet(org, other, T0, main_st)
    sweep_recovery(now=T0 + timedelta(hours=3))
    mine = PartnerIncident.objects.get(customer=margaret)

    doc = json.loads(b"".join(export_customer(customer=margaret)))

    (incident,) = doc["partner_incidents"]
    assert incident["id"] == mine.pk and incident["partner"] == "Swift Valet Co"
    assert incident["location"] == main_st.slug and incident["status"] == "open"
    assert incident["touchpoints"] == ["parking_valet"]

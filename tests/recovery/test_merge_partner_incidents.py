"""A merge keeps the duplicate's partner incidents: they are the person's (issue 16)."""

from datetime import UTC, datetime

from partners.models import Partner, PartnerIncident
from recovery.services import merge_customers
from tests.factories import CustomerFactory, EpisodeFactory

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def test_merging_moves_the_duplicates_partner_incidents_to_the_survivor(org, main_st):
    into = CustomerFactory.create(organization=org, name="Ann Lee")
    duplicate = CustomerFactory.create(organization=org, name="Ann")
    episode = EpisodeFactory.create(
        organization=org, customer=duplicate, location=main_st, experience=-2
    )
    valet = Partner.objects.create(
        organization=org, name="Swift Valet", touchpoints=["parking_valet"], created_at=NOW
    )
    incident = PartnerIncident.objects.create(
        organization=org, partner=valet, customer=duplicate, episode=episode,
        location=main_st, occurred_at=NOW, experience=-2, opened_at=NOW,
    )  # fmt: skip

    merge_customers(into=into, duplicate=duplicate, now=NOW)

    incident.refresh_from_db()
    assert incident.customer_id == into.pk
    assert PartnerIncident.objects.count() == 1

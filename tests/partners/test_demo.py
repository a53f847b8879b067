from datetime import timedelta

from django.utils import timezone

from accounts.tenancy import Tenant
from partners.demo import seed_partners
from partners.models import PartnerIncident
from partners.selectors import last_full_month, scorecard
from tests.factories import CustomerFactory
from tests.recovery.conftest import log


def test_the_demo_partners_give_the_scorecard_a_result(org, main_st, harbour):
    now = timezone.now().replace(microsecond=0)
    for i in range(30):
        person = CustomerFactory.create(organization=org, name=f"Guest {i}")
        log(org, person, now - timedelta(days=100 + i), kind="visit", location=main_st)

    assert len(seed_partners(org, now)) == 2

    assert seed_partners(org, now) == []  # once
    statuses = set(PartnerIncident.objects.values_list("status", flat=True))
    assert {"open", "fixed"} <= statuses and len(statuses) >= 3
    assert PartnerIncident.objects.filter(recovery_case__isnull=False).count() >= 10
    card = scorecard(tenant=Tenant(organization=org), month=last_full_month(now.date()), now=now)
    rows = {row.partner.name: row for row in card.rows}
    assert rows["Harbour Valet Co"].involved_visits > 20
    assert any(row.failures for row in rows.values())
    assert any(row.failures_per_100 for row in rows.values())
    assert any(row.median_hours_to_answer is not None for row in rows.values())

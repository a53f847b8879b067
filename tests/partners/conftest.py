"""Partner fixtures: a valet company and a delivery app, and a bad night at the valet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cxcore.models import Episode
from partners.models import Partner, PartnerIncident
from partners.services import create_partner, open_incidents_for
from recovery.models import RecoveryCase
from recovery.sweep import sweep_recovery
from tests.recovery.conftest import log

T0 = datetime(2026, 10, 9, 19, 30, tzinfo=UTC)  # a Friday night in October
VALET = [{"code": "parking_valet", "third_party": True}]
DELIVERY = [{"code": "delivery", "third_party": True}]


@pytest.fixture
def valet(org) -> Partner:
    return create_partner(
        organization=org,
        fields={
            "name": "Swift Valet Co",
            "contact_name": "Priya Shah",
            "contact_email": "Ops@SwiftValet.example",
            "contact_phone": "020 7946 0018",
            "touchpoints": ["parking_valet"],
        },
        now=T0 - timedelta(days=60),
    )


@pytest.fixture
def courier(org) -> Partner:
    return create_partner(
        organization=org,
        fields={"name": "QuickBite Delivery", "touchpoints": ["delivery"]},
        now=T0 - timedelta(days=60),
    )


def bad_valet(org, customer, at, location=None, **fields) -> Episode:
    """A complaint about the valet: the car came 45 minutes late."""
    return log(
        org,
        customer,
        at,
        kind="complaint",
        summary="Valet kept me waiting 45 min for my car",
        touchpoints=fields.pop("touchpoints", VALET),
        experience=fields.pop("experience", -2),
        location=location,
        **fields,
    )


def open_beside_case(episode: Episode, now: datetime):
    """The sweep opens the case and, beside it, the episode's incidents (the sweep calls
    open_incidents_for; calling it again here adds nothing, as a retried batch would not):
    the case, and the episode's incidents."""
    sweep_recovery(now=now)
    case = RecoveryCase.objects.get(customer_id=episode.customer_id, status="open")
    open_incidents_for(links=[(case, [episode])], now=now)
    return case, list(PartnerIncident.objects.filter(episode=episode).order_by("pk"))

"""Recovery fixtures: the organization's default playbooks and DESIGN.md's forgotten order."""

from datetime import UTC, datetime, timedelta

import pytest

from cxcore.services import EpisodeInput, record_episode
from recovery.services import create_default_playbooks
from tests.factories import CustomerFactory

T0 = datetime(2026, 11, 13, 12, 40, tzinfo=UTC)  # the fundraiser rush
LATTE = {"name": "Almond-milk latte", "quantity": 1, "price": "3.60"}


@pytest.fixture
def playbooks(org):
    return create_default_playbooks(organization=org)


@pytest.fixture
def dan(org):
    return CustomerFactory(organization=org, name="Daniel Reyes")


def log(org, customer, at, **fields):
    return record_episode(
        organization=org,
        data=EpisodeInput(customer_id=customer.pk, occurred_at=at, **fields),
        now=at,
    ).episode


def forgotten_order(org, customer, location=None):
    """DESIGN.md's story: a regular, his usual latte, and the order forgotten in a rush."""
    for days in (20, 16, 12, 8):
        log(org, customer, T0 - timedelta(days=days), kind="order", items=[LATTE])
    return log(
        org,
        customer,
        T0 + timedelta(hours=3),
        kind="complaint",
        summary="The cashier forgot my salad and latte; I left hungry and angry.",
        touchpoints=[{"code": "order_accuracy", "third_party": False}],
        experience=-2,
        location=location,
    )

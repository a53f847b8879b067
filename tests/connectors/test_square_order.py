"""Square does not promise order or uniqueness: whatever order a customer's, a payment's and
a refund's events arrive in, and however often, the narrative ends the same."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import timedelta

from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import square
from connectors.models import SquarePayment, SquareRefund
from connectors.services import connect_square, handle_notification
from cxcore.models import Customer, Episode
from tests.connectors.square_events import (
    SQUARE_MAIN,
    body_of,
    customer_event,
    payment_event,
    refund_event,
)

# The five events of one story, by name; each example picks an order and repeats some.
PHONES = (f"+447400{n:06d}" for n in itertools.count(500000))  # one person per example
NAMES = ["customer", "payment_approved", "payment_completed", "refund_pending", "refund_done"]


def story(ids: dict[str, str], phone: str) -> dict[str, square.Notification]:
    at = timezone.now() - timedelta(hours=2)
    later = at + timedelta(minutes=1)
    events = {
        "customer": customer_event(id=ids["customer"], phone_number=phone),
        "payment_approved": payment_event(
            at=at, id=ids["payment"], customer_id=ids["customer"], status="APPROVED"
        ),
        "payment_completed": payment_event(
            "payment.updated",
            at=at,
            updated_at=later,
            id=ids["payment"],
            customer_id=ids["customer"],
        ),
        "refund_pending": refund_event(
            "refund.created",
            at=later,
            id=ids["refund"],
            payment_id=ids["payment"],
            status="PENDING",
        ),
        "refund_done": refund_event(
            at=later,
            updated_at=later + timedelta(minutes=3),
            id=ids["refund"],
            payment_id=ids["payment"],
        ),
    }
    return {
        name: square.parse_notification(json.loads(body_of(event)))
        for name, event in events.items()
    }


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    order=st.permutations(NAMES),
    repeats=st.lists(st.sampled_from(NAMES), max_size=4),
)
def test_any_order_and_any_repeats_end_in_one_visit_and_one_incident(org, main_st, order, repeats):
    connection = connection_for(org)
    ids = {kind: f"{kind}-{uuid.uuid4().hex[:12]}" for kind in ("customer", "payment", "refund")}
    notifications = story(ids, next(PHONES))
    for name in [*order, *repeats]:
        handle_notification(connection=connection, notification=notifications[name])
    customer = Customer.objects.get(identifiers__kind="pos_id", identifiers__value=ids["customer"])
    episodes = list(Episode.objects.filter(customer=customer).order_by("kind"))
    assert [e.kind for e in episodes] == ["incident", "visit"]
    incident, visit = episodes
    assert incident.experience == -2 and incident.touchpoints[0]["code"] == "order_accuracy"
    assert visit.location_id == main_st.pk and customer.visit_count == 1
    assert {i.kind for i in customer.identifiers.all()} == {"pos_id", "phone"}
    assert SquarePayment.objects.get(payment_id=ids["payment"]).status == "COMPLETED"
    refund = SquareRefund.objects.get(refund_id=ids["refund"])
    assert refund.status == "COMPLETED" and refund.episode_id == incident.pk


def connection_for(org):
    connection, _ = connect_square(
        organization=org, signature_key="k", locations={SQUARE_MAIN: "main-st"}
    )
    return connection

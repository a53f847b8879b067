"""Square notifications as Square sends them, built from the official SDK's typed models and
signed as Square signs them; the SDK's own verify_signature checks every signature we send."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.test import Client
from square.types.booking import Booking
from square.types.booking_created_event import BookingCreatedEvent
from square.types.booking_created_event_data import BookingCreatedEventData
from square.types.booking_created_event_object import BookingCreatedEventObject
from square.types.customer import Customer
from square.types.customer_created_event import CustomerCreatedEvent
from square.types.customer_created_event_data import CustomerCreatedEventData
from square.types.customer_created_event_object import CustomerCreatedEventObject
from square.types.customer_updated_event import CustomerUpdatedEvent
from square.types.customer_updated_event_data import CustomerUpdatedEventData
from square.types.customer_updated_event_object import CustomerUpdatedEventObject
from square.types.money import Money
from square.types.payment import Payment
from square.types.payment_created_event import PaymentCreatedEvent
from square.types.payment_created_event_data import PaymentCreatedEventData
from square.types.payment_created_event_object import PaymentCreatedEventObject
from square.types.payment_refund import PaymentRefund
from square.types.payment_updated_event import PaymentUpdatedEvent
from square.types.payment_updated_event_data import PaymentUpdatedEventData
from square.types.payment_updated_event_object import PaymentUpdatedEventObject
from square.types.refund_created_event import RefundCreatedEvent
from square.types.refund_created_event_data import RefundCreatedEventData
from square.types.refund_created_event_object import RefundCreatedEventObject
from square.types.refund_updated_event import RefundUpdatedEvent
from square.types.refund_updated_event_data import RefundUpdatedEventData
from square.types.refund_updated_event_object import RefundUpdatedEventObject
from square.utils.webhooks_helper import verify_signature

MERCHANT = "MLQW2ZRDQ2DY8"
SQUARE_MAIN = "L8GQ2MAIN"
SQUARE_HARBOUR = "L8GQ2HARB"


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(model, data_model, object_model, *, kind: str, type_: str, obj, event_id=None):
    return model(
        merchant_id=MERCHANT,
        type=kind,
        event_id=event_id or str(uuid.uuid4()),
        created_at=rfc3339(datetime.now(UTC)),
        data=data_model(type=type_, id=obj.id, object=object_model(**{type_: obj})),
    )


def customer_event(kind="customer.created", *, event_id=None, **fields):
    defaults = {"id": "SQCUST1", "given_name": "Dan", "family_name": "Reyes"}
    obj = Customer(**{**defaults, **fields})
    models = {
        "customer.created": (
            CustomerCreatedEvent,
            CustomerCreatedEventData,
            CustomerCreatedEventObject,
        ),
        "customer.updated": (
            CustomerUpdatedEvent,
            CustomerUpdatedEventData,
            CustomerUpdatedEventObject,
        ),
    }[kind]
    return envelope(*models, kind=kind, type_="customer", obj=obj, event_id=event_id)


def payment_event(
    kind="payment.created", *, at: datetime, updated_at=None, event_id=None, amount=1250, **fields
):
    defaults = {
        "id": "SQPAY1",
        "status": "COMPLETED",
        "customer_id": "SQCUST1",
        "location_id": SQUARE_MAIN,
        "amount_money": Money(amount=amount, currency="GBP"),
        "created_at": rfc3339(at),
        "updated_at": rfc3339(updated_at or at),
        "source_type": "CARD",
    }
    obj = Payment(**{**defaults, **fields})
    models = {
        "payment.created": (
            PaymentCreatedEvent,
            PaymentCreatedEventData,
            PaymentCreatedEventObject,
        ),
        "payment.updated": (
            PaymentUpdatedEvent,
            PaymentUpdatedEventData,
            PaymentUpdatedEventObject,
        ),
    }[kind]
    return envelope(*models, kind=kind, type_="payment", obj=obj, event_id=event_id)


def refund_event(kind="refund.updated", *, at: datetime, updated_at=None, event_id=None, **fields):
    defaults = {
        "id": "SQREF1",
        "status": "COMPLETED",
        "payment_id": "SQPAY1",
        "location_id": SQUARE_MAIN,
        "amount_money": Money(amount=450, currency="GBP"),
        "reason": "Salad never rung in",
        "created_at": rfc3339(at),
        "updated_at": rfc3339(updated_at or at),
    }
    obj = PaymentRefund(**{**defaults, **fields})
    models = {
        "refund.created": (RefundCreatedEvent, RefundCreatedEventData, RefundCreatedEventObject),
        "refund.updated": (RefundUpdatedEvent, RefundUpdatedEventData, RefundUpdatedEventObject),
    }[kind]
    return envelope(*models, kind=kind, type_="refund", obj=obj, event_id=event_id)


def booking_event(*, at: datetime, start_at: datetime, event_id=None, **fields):
    defaults = {
        "id": "SQBOOK1",
        "status": "ACCEPTED",
        "customer_id": "SQCUST1",
        "location_id": SQUARE_MAIN,
        "created_at": rfc3339(at),
        "start_at": rfc3339(start_at),
    }
    obj = Booking(**{**defaults, **fields})
    return envelope(
        BookingCreatedEvent,
        BookingCreatedEventData,
        BookingCreatedEventObject,
        kind="booking.created",
        type_="booking",
        obj=obj,
        event_id=event_id,
    )


def body_of(event) -> bytes:
    if isinstance(event, bytes):
        return event
    if isinstance(event, dict):
        return json.dumps(event).encode()
    return event.model_dump_json(exclude_none=True).encode()


def sign(body: bytes, *, url: str, key: str) -> str:
    """Square's signature, checked against the SDK's verifier before it is used."""
    digest = hmac.new(key.encode(), (url + body.decode()).encode(), hashlib.sha256).digest()
    header = base64.b64encode(digest).decode()
    assert verify_signature(
        request_body=body.decode(),
        signature_header=header,
        signature_key=key,
        notification_url=url,
    )
    return header


def url_of(token: str) -> str:
    return f"/api/v1/connectors/square/{token}/"


def send(token: str, event, *, key: str, signature: str | None = None, url: str | None = None):
    """POST a notification to our endpoint as Square would (signed for the URL Square knows)."""
    body = body_of(event)
    path = url_of(token)
    header = (
        signature
        if signature is not None
        else sign(body, url=url or settings.SITE_URL + path, key=key)
    )
    return Client().post(
        path,
        data=body,
        content_type="application/json",
        HTTP_X_SQUARE_HMACSHA256_SIGNATURE=header,
    )

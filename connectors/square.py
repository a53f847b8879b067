"""Square's webhook notifications, pure: the signature check and what each event type we use
says, as values. No ORM here; `connectors.services` acts on these.

A notification reads {"merchant_id", "type", "event_id", "created_at",
"data": {"type", "id", "object": {"<type>": {...}}}} and is signed with the subscription's
signature key: `x-square-hmacsha256-signature` = base64(HMAC-SHA256(key, notification URL +
raw body)) (https://developer.squareup.com/docs/webhooks/step3validate).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from accounts.errors import InvalidInput
from cxcore.text_rules import storable_problem

SIGNATURE_HEADER = "x-square-hmacsha256-signature"
COMPLETED = "COMPLETED"

CUSTOMER_EVENTS = frozenset({"customer.created", "customer.updated"})
PAYMENT_EVENTS = frozenset({"payment.created", "payment.updated"})
REFUND_EVENTS = frozenset({"refund.created", "refund.updated"})
BOOKING_EVENTS = frozenset({"booking.created", "booking.updated"})
USED_EVENTS = CUSTOMER_EVENTS | PAYMENT_EVENTS | REFUND_EVENTS | BOOKING_EVENTS


def signature_of(*, body: bytes, notification_url: str, signature_key: str) -> str:
    digest = hmac.new(
        signature_key.encode(), notification_url.encode() + body, hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def is_signed(*, body: bytes, header: str | None, notification_url: str, key: str) -> bool:
    """Whether Square signed exactly these bytes for this URL (constant-time compare)."""
    if not header or not body or not key:
        return False
    expected = signature_of(body=body, notification_url=notification_url, signature_key=key)
    return hmac.compare_digest(expected.encode(), header.strip().encode())


@dataclass(frozen=True)
class Notification:
    type: str
    event_id: str
    created_at: datetime | None
    object: dict[str, Any]  # data.object: {"payment": {...}} and the like


@dataclass(frozen=True)
class CustomerFacts:
    square_id: str
    name: str
    phone: str
    email: str


@dataclass(frozen=True)
class PaymentFacts:
    id: str
    status: str
    customer_id: str
    location_id: str
    amount: Decimal
    currency: str
    created_at: datetime
    updated_at: datetime

    @property
    def is_completed(self) -> bool:
        return self.status == COMPLETED


@dataclass(frozen=True)
class RefundFacts:
    id: str
    payment_id: str
    status: str
    reason: str
    location_id: str
    amount: Decimal
    currency: str
    created_at: datetime
    updated_at: datetime

    @property
    def is_completed(self) -> bool:
        return self.status == COMPLETED


@dataclass(frozen=True)
class BookingFacts:
    id: str
    status: str
    customer_id: str
    location_id: str
    start_at: datetime
    created_at: datetime
    note: str


def _text(obj: dict, key: str, *, field: str, required: bool = False, limit: int = 200) -> str:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise InvalidInput("Required.", field=f"{field}.{key}", code="required")
        return ""
    if not isinstance(value, str):
        raise InvalidInput("Must be a string.", field=f"{field}.{key}")
    if storable_problem(value):
        raise InvalidInput("Not storable text.", field=f"{field}.{key}")
    return value.strip()[:limit]


def _time(obj: dict, key: str, *, field: str, default: datetime | None = None) -> datetime:
    raw = obj.get(key)
    if raw is None and default is not None:
        return default
    if not isinstance(raw, str):
        raise InvalidInput("An RFC 3339 time is required.", field=f"{field}.{key}", code="required")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("Not an RFC 3339 time.", field=f"{field}.{key}") from None
    if value.tzinfo is None:
        raise InvalidInput("The time needs its offset.", field=f"{field}.{key}")
    return value


def _money(obj: dict, key: str, *, field: str) -> tuple[Decimal, str]:
    """Square's Money ({"amount": 1250, "currency": "GBP"}) in the currency's main unit. The
    cafes this is for use two-decimal currencies; others would be off by their exponent."""
    money = obj.get(key)
    if money is None:
        return Decimal(0), ""
    if not isinstance(money, dict) or not isinstance(money.get("amount", 0), int):
        raise InvalidInput("Money is {amount: integer, currency}.", field=f"{field}.{key}")
    amount = Decimal(money.get("amount", 0)) / 100
    if amount < 0 or amount >= Decimal(10) ** 10:
        raise InvalidInput("Out of range.", field=f"{field}.{key}.amount")
    currency = money.get("currency") or ""
    if not isinstance(currency, str) or (
        currency and not (currency.isascii() and currency.isalpha())
    ):
        raise InvalidInput("An ISO 4217 code, e.g. GBP.", field=f"{field}.{key}.currency")
    return amount, currency[:3].upper()


def parse_notification(payload: Any) -> Notification:
    if not isinstance(payload, dict):
        raise InvalidInput("A JSON object is expected.", field="body")
    kind = _text(payload, "type", field="body", required=True, limit=60)
    event_id = _text(payload, "event_id", field="body", required=True, limit=100)
    created = payload.get("created_at")
    created_at = _time(payload, "created_at", field="body") if created is not None else None
    data = payload.get("data") or {}
    if not isinstance(data, dict):
        raise InvalidInput("Must be an object.", field="data")
    obj = data.get("object") or {}
    if not isinstance(obj, dict):
        raise InvalidInput("Must be an object.", field="data.object")
    return Notification(kind, event_id, created_at, obj)


def _entity(notification: Notification, name: str) -> dict:
    entity = notification.object.get(name)
    if not isinstance(entity, dict):
        raise InvalidInput(f"The {name} is missing.", field=f"data.object.{name}", code="required")
    return entity


def customer_facts(notification: Notification) -> CustomerFacts:
    obj = _entity(notification, "customer")
    field = "data.object.customer"
    name = " ".join(
        part
        for part in (_text(obj, "given_name", field=field), _text(obj, "family_name", field=field))
        if part
    ) or _text(obj, "nickname", field=field)
    return CustomerFacts(
        square_id=_text(obj, "id", field=field, required=True, limit=64),
        name=name[:200],
        phone=_text(obj, "phone_number", field=field, limit=40),
        email=_text(obj, "email_address", field=field, limit=254),
    )


def payment_facts(notification: Notification) -> PaymentFacts:
    obj = _entity(notification, "payment")
    field = "data.object.payment"
    amount, currency = _money(obj, "amount_money", field=field)
    created_at = _time(obj, "created_at", field=field)
    return PaymentFacts(
        id=_text(obj, "id", field=field, required=True, limit=100),
        status=_text(obj, "status", field=field, required=True, limit=20).upper(),
        customer_id=_text(obj, "customer_id", field=field, limit=64),
        location_id=_text(obj, "location_id", field=field, limit=100),
        amount=amount,
        currency=currency,
        created_at=created_at,
        updated_at=_time(obj, "updated_at", field=field, default=created_at),
    )


def refund_facts(notification: Notification) -> RefundFacts:
    obj = _entity(notification, "refund")
    field = "data.object.refund"
    amount, currency = _money(obj, "amount_money", field=field)
    created_at = _time(obj, "created_at", field=field)
    return RefundFacts(
        id=_text(obj, "id", field=field, required=True, limit=100),
        payment_id=_text(obj, "payment_id", field=field, required=True, limit=100),
        status=_text(obj, "status", field=field, required=True, limit=20).upper(),
        reason=_text(obj, "reason", field=field, limit=500),
        location_id=_text(obj, "location_id", field=field, limit=100),
        amount=amount,
        currency=currency,
        created_at=created_at,
        updated_at=_time(obj, "updated_at", field=field, default=created_at),
    )


def booking_facts(notification: Notification) -> BookingFacts:
    obj = _entity(notification, "booking")
    field = "data.object.booking"
    created_at = _time(obj, "created_at", field=field)
    return BookingFacts(
        id=_text(obj, "id", field=field, required=True, limit=100),
        status=_text(obj, "status", field=field, limit=40).upper(),
        customer_id=_text(obj, "customer_id", field=field, limit=64),
        location_id=_text(obj, "location_id", field=field, limit=100),
        start_at=_time(obj, "start_at", field=field),
        created_at=created_at,
        note=_text(obj, "customer_note", field=field, limit=200),
    )


def refund_summary(reason: str) -> str:
    """The incident's text: the refund's reason as staff typed it in Square (the headline
    reads its first clause, "Dan — latte cold · 2 days ago")."""
    return reason or "Refunded in Square"

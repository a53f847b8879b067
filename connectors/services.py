"""Connecting Square and taking its notifications in; the organization's reason map.

Every episode goes in through cxcore's `record_episode` (one entry into the narrative), with
an external id per Square object, so a payment or refund is one episode however often and in
whatever order Square reports it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.errors import InvalidInput, NotFoundError
from accounts.models import Location, Organization, User
from connectors import square
from connectors.models import ReasonMap, SquareConnection, SquareEvent, SquarePayment, SquareRefund
from connectors.reasons import (
    DEFAULT_REASON_MAP,
    ReasonEntry,
    entries_from_json,
    entries_to_json,
    map_reason,
)
from cxcore.services import (
    EpisodeInput,
    identify_customer_id,
    normalize_identifiers,
    record_episode,
)
from cxcore.vocabulary import EpisodeKind, Source

logger = logging.getLogger(__name__)
MAX_SIGNATURE_KEY = 200
# Bookings Square still honours; a cancelled or declined one is no reason to expect anyone.
LIVE_BOOKING_STATUSES = frozenset({"", "PENDING", "ACCEPTED"})


# --- the reason map --------------------------------------------------------------------------


def reason_entries(*, organization: Organization) -> list[ReasonEntry]:
    """The organization's own map, else the defaults."""
    stored = ReasonMap.objects.for_org(organization).values_list("entries", flat=True).first()
    return entries_from_json(stored) if stored is not None else list(DEFAULT_REASON_MAP)


def set_reason_map(*, organization: Organization, entries: list[ReasonEntry]) -> list[ReasonEntry]:
    ReasonMap.objects.update_or_create(
        organization=organization, defaults={"entries": entries_to_json(entries)}
    )
    return entries


# --- connecting ------------------------------------------------------------------------------


def notification_url(connection: SquareConnection) -> str:
    """What the owner registers in Square, and what Square signs: it must be byte-for-byte
    the URL Square posts to, so it is built from SITE_URL, never from the request's Host."""
    return settings.SITE_URL + reverse("square-notifications", args=[connection.token])


def _location_ids(organization: Organization, mapping: object) -> dict[str, int]:
    if not isinstance(mapping, Mapping):
        raise InvalidInput('Give {"<Square location id>": "<location slug>"}.', field="locations")
    ours = dict(
        Location.objects.filter(organization=organization, is_active=True).values_list("slug", "pk")
    )
    found: dict[str, int] = {}
    for square_id, slug in mapping.items():
        # Any key is kept as given (JSON keys are strings): one that is no Square location id
        # simply never matches a notification.
        field = f"locations.{str(square_id)[:60]}"
        if not isinstance(slug, str) or slug not in ours:
            raise NotFoundError(f"No location {str(slug)[:60]!r} here.", field=field)
        found[str(square_id)] = ours[slug]
    return found


@transaction.atomic
def connect_square(
    *,
    organization: Organization,
    signature_key: str,
    locations: object,
    by_user: User | None = None,
) -> tuple[SquareConnection, bool]:
    """Connect Square, or change the key and locations of the connection there is (its URL
    stays the same, so nothing needs registering again). Returns (connection, created)."""
    key = signature_key.strip() if isinstance(signature_key, str) else ""
    if not key or len(key) > MAX_SIGNATURE_KEY:
        raise InvalidInput(
            f"The signature key from Square's dashboard, up to {MAX_SIGNATURE_KEY} characters.",
            field="signature_key",
        )
    mapped = _location_ids(organization, locations)
    current = SquareConnection.objects.for_org(organization).active().select_for_update().first()
    if current is not None:
        current.signature_key, current.locations = key, mapped
        current.save(update_fields=["signature_key", "locations", "updated_at"])
        return current, False
    try:
        with transaction.atomic():
            created = SquareConnection.objects.create(
                organization=organization, signature_key=key, locations=mapped, created_by=by_user
            )
    except IntegrityError:
        # Another owner connected at the same moment: theirs stands, with our settings.
        return connect_square(
            organization=organization, signature_key=key, locations=locations, by_user=by_user
        )
    return created, True


def revoke_square(*, organization: Organization, now: datetime | None = None) -> bool:
    """Stop taking notifications: the URL answers 410 from now on."""
    changed = (
        SquareConnection.objects.for_org(organization)
        .active()
        .update(revoked_at=now or timezone.now())
    )
    return bool(changed)


# --- notifications ---------------------------------------------------------------------------


def handle_notification(
    *, connection: SquareConnection, notification: square.Notification, now: datetime | None = None
) -> str:
    """Act on one verified notification, once per event id; returns what became of it.

    The event row is inserted first, in the transaction of its effects: a replay finds it and
    changes nothing, a concurrent replay waits on the unique index and then finds it, and a
    failure rolls both back so Square's retry is taken.
    """
    now = now or timezone.now()
    handler = HANDLERS.get(notification.type)
    if handler is None:
        return "ignored"
    organization = connection.organization
    with transaction.atomic():
        try:
            with transaction.atomic():
                event = SquareEvent.objects.create(
                    organization=organization,
                    event_id=notification.event_id,
                    type=notification.type,
                    received_at=now,
                )
        except IntegrityError:
            return "duplicate"
        outcome = handler(connection, notification, now)
        event.outcome = outcome
        event.save(update_fields=["outcome"])
    return outcome


def _location(connection: SquareConnection, square_location_id: str) -> Location | None:
    """Our location for a Square location. An unmapped one is kept at no location (the
    customer's story does not lose a visit or a refund over a setting) and logged."""
    location_id = connection.locations.get(square_location_id)
    location = (
        Location.objects.filter(
            organization_id=connection.organization_id, pk=location_id, is_active=True
        ).first()
        if location_id is not None
        else None
    )
    if location is None and square_location_id:
        logger.warning(
            "Square location %s of organization %s is not mapped; recorded at no location",
            square_location_id,
            connection.organization_id,
        )
    return location


def _customer_identifiers(organization: Organization, facts: square.CustomerFacts) -> dict:
    """Square's customer id as the pos_id, and the phone and email Square holds if they read
    as such (a typo in Square's directory must not make Square retry the event forever)."""
    usable: dict[str, str] = {}
    for kind, raw in (("phone", facts.phone), ("email", facts.email)):
        if not raw:
            continue
        try:
            usable |= normalize_identifiers(organization=organization, identifiers={kind: raw})
        except InvalidInput:
            logger.info("Square customer %s: %s not usable, left out", facts.square_id, kind)
    pos_id = normalize_identifiers(
        organization=organization, identifiers={"pos_id": facts.square_id}
    )
    return pos_id | usable


def _on_customer(connection: SquareConnection, n: square.Notification, now: datetime) -> str:
    facts = square.customer_facts(n)
    organization = connection.organization
    normalized = _customer_identifiers(organization, facts)
    # Identifiers are only ever learned, and a name only fills a blank one, so created and
    # updated events give the same customer in any order (a rename in Square does not
    # overwrite what staff wrote).
    identify_customer_id(organization=organization, normalized=normalized, name=facts.name)
    return "recorded"


def _upsert(model, *, lookup: dict, fields: dict, updated_at: datetime):
    """The row for a Square object, locked, holding its newest state: an update older than
    what is stored (Square does not promise order) leaves it as it is."""
    row = model.objects.select_for_update().filter(**lookup).first()
    if row is None:
        try:
            with transaction.atomic():
                return model.objects.create(**lookup, **fields, square_updated_at=updated_at)
        except IntegrityError:
            row = model.objects.select_for_update().get(**lookup)
    if updated_at >= row.square_updated_at:
        for name, value in fields.items():
            # A later update without a customer id does not forget the one we had.
            if value != "" or not getattr(row, name):
                setattr(row, name, value)
        row.square_updated_at = updated_at
        row.save()
    return row


def _on_payment(connection: SquareConnection, n: square.Notification, now: datetime) -> str:
    facts = square.payment_facts(n)
    organization = connection.organization
    payment = _upsert(
        SquarePayment,
        lookup={"organization": organization, "payment_id": facts.id},
        fields={
            "status": facts.status,
            "square_customer_id": facts.customer_id,
            "square_location_id": facts.location_id,
            "amount": facts.amount,
            "currency": facts.currency,
            "occurred_at": facts.created_at,
        },
        updated_at=facts.updated_at,
    )
    outcome = "stored"
    if payment.episode_id is None and payment.status == square.COMPLETED:
        if not payment.square_customer_id:
            outcome = "no_customer"
        else:
            payment.episode = _record_visit(connection, payment, now=now)
            payment.save(update_fields=["episode"])
            outcome = "recorded"
    if payment.square_customer_id:
        _record_waiting_refunds(connection, payment, now=now)
    return outcome


def _record_visit(connection: SquareConnection, payment: SquarePayment, *, now: datetime):
    # Items carry the spend; the name is left empty so a payment (whose line items Square
    # sends only through the Orders API) never becomes the customer's "usual order".
    items = [{"name": "", "quantity": 1, "price": str(payment.amount)}] if payment.amount else []
    recorded = record_episode(
        organization=connection.organization,
        data=EpisodeInput(
            kind=EpisodeKind.VISIT,
            occurred_at=payment.occurred_at,
            identifiers={"pos_id": payment.square_customer_id},
            location=_location(connection, payment.square_location_id),
            source=Source.POS,
            external_id=f"square:payment:{payment.payment_id}",
            items=items,
        ),
        now=now,
    )
    return recorded.episode


def _on_refund(connection: SquareConnection, n: square.Notification, now: datetime) -> str:
    facts = square.refund_facts(n)
    organization = connection.organization
    refund = _upsert(
        SquareRefund,
        lookup={"organization": organization, "refund_id": facts.id},
        fields={
            "payment_id": facts.payment_id,
            "status": facts.status,
            "reason": facts.reason,
            "square_location_id": facts.location_id,
            "amount": facts.amount,
            "currency": facts.currency,
            "occurred_at": facts.created_at,
        },
        updated_at=facts.updated_at,
    )
    if refund.episode_id is not None or refund.status != square.COMPLETED:
        return "stored"
    payment = (
        SquarePayment.objects.for_org(organization)
        .filter(payment_id=refund.payment_id)
        .exclude(square_customer_id="")
        .first()
    )
    if payment is None:
        # Before its payment (or for a payment with no customer): kept, and recorded when
        # the payment names its customer.
        return "pending"
    _record_refund(connection, refund, payment, now=now)
    return "recorded"


def _record_waiting_refunds(
    connection: SquareConnection, payment: SquarePayment, *, now: datetime
) -> None:
    waiting = SquareRefund.objects.select_for_update().filter(
        organization_id=connection.organization_id,
        payment_id=payment.payment_id,
        status=square.COMPLETED,
        episode__isnull=True,
    )
    for refund in waiting.order_by("pk"):
        _record_refund(connection, refund, payment, now=now)


def _record_refund(
    connection: SquareConnection, refund: SquareRefund, payment: SquarePayment, *, now: datetime
) -> None:
    organization = connection.organization
    mapped = map_reason(refund.reason, reason_entries(organization=organization))
    recorded = record_episode(
        organization=organization,
        data=EpisodeInput(
            kind=EpisodeKind.INCIDENT,
            occurred_at=refund.occurred_at,
            identifiers={"pos_id": payment.square_customer_id},
            location=_location(connection, refund.square_location_id or payment.square_location_id),
            source=Source.POS,
            external_id=f"square:refund:{refund.refund_id}",
            summary=square.refund_summary(refund.reason),
            touchpoints=[{"code": mapped.touchpoint, "third_party": False}],
            experience=mapped.experience,
        ),
        now=now,
    )
    refund.episode = recorded.episode
    refund.save(update_fields=["episode"])


def booking_summary(start_at: datetime, tz: ZoneInfo) -> str:
    """'Sat 19:00' in the location's zone: what the reminder says they booked."""
    return start_at.astimezone(tz).strftime("%a %H:%M")


def _on_booking(connection: SquareConnection, n: square.Notification, now: datetime) -> str:
    facts = square.booking_facts(n)
    if facts.status not in LIVE_BOOKING_STATUSES or not facts.customer_id:
        return "skipped"
    location = _location(connection, facts.location_id)
    tz = ZoneInfo(location.time_zone if location else connection.organization.time_zone)
    record_episode(
        organization=connection.organization,
        data=EpisodeInput(
            kind=EpisodeKind.RESERVATION,
            # When it was booked: the narrative holds what happened, not what will.
            occurred_at=min(facts.created_at, now),
            identifiers={"pos_id": facts.customer_id},
            location=location,
            source=Source.POS,
            # One reservation per booking: a reschedule (booking.updated) is not a second one.
            external_id=f"square:booking:{facts.id}",
            summary=booking_summary(facts.start_at, tz),
        ),
        now=now,
    )
    return "recorded"


Handler = Callable[[SquareConnection, square.Notification, datetime], str]
HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(square.CUSTOMER_EVENTS, _on_customer),
    **dict.fromkeys(square.PAYMENT_EVENTS, _on_payment),
    **dict.fromkeys(square.REFUND_EVENTS, _on_refund),
    **dict.fromkeys(square.BOOKING_EVENTS, _on_booking),
}

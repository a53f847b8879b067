"""Managing endpoints: every change goes through here, keyword-only, each in its transaction."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from accounts.errors import ConflictError, InvalidInput
from accounts.models import Organization
from cxcore.text_rules import storable_problem
from webhooks import outbox, signing
from webhooks.delivery import disable_endpoint
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.rules import is_public_address
from webhooks.transport import TargetRefused, check_url
from webhooks.vocabulary import SUBSCRIBABLE, EventType

URL_MAX_LENGTH = 2000
DESCRIPTION_MAX_LENGTH = 200
# After a rotation the old secret still signs for this long.
ROTATION_OVERLAP = timedelta(hours=24)
ENDPOINT_FIELDS = ("url", "events", "description", "enabled")
NEW_ENDPOINT_FIELDS = ("url", "events", "description")
URI_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


def _storable(value: str, *, field: str) -> str:
    """PostgreSQL text holds no NUL and no lone surrogate: a 400, not a 500."""
    if storable_problem(value):
        raise InvalidInput("Contains a character that cannot be stored.", field=field)
    return value


def clean_url(url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("A URL is required.", field="url", code="required")
    url = _storable(url.strip(), field="url")
    if len(url) > URL_MAX_LENGTH:
        raise InvalidInput(f"At most {URL_MAX_LENGTH} characters.", field="url", code="max_length")
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_TARGETS
    try:
        _, host, _ = check_url(url, allow_private=allow_private)
    except TargetRefused as exc:
        raise InvalidInput(str(exc), field="url", code="url_refused") from exc
    # A URI as RFC 3986 spells it (an international name in its xn-- form), with a real host:
    # what the schema's `format: uri` promises a consumer reading the endpoint back.
    try:
        if not URI_CHARACTERS.fullmatch(url):
            raise ValidationError("characters")
        URLValidator(schemes=["https", "http"])(url)
    except ValidationError as exc:
        raise InvalidInput(
            "Not a valid URL (an international name goes in its xn-- form).",
            field="url",
            code="invalid",
        ) from exc
    if not allow_private:
        # Names are resolved (and refused if private) at every send; what is plainly not
        # public is refused now, so the owner learns at once.
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if (
            (literal is not None and not is_public_address(str(literal)))
            or host
            in (
                "localhost",
                "localhost.localdomain",
            )
            or host.endswith(".localhost")
        ):
            raise InvalidInput(
                "Webhooks go to public addresses only.", field="url", code="url_refused"
            )
    return url


def clean_events(events: Any) -> list[str]:
    if not isinstance(events, list) or not events:
        raise InvalidInput("Name at least one event.", field="events", code="required")
    for index, name in enumerate(events):
        if not isinstance(name, str) or name not in SUBSCRIBABLE:
            raise InvalidInput(
                f"Not an event: {str(name)[:60]!r}. Events: {', '.join(sorted(SUBSCRIBABLE))}.",
                field=f"events[{index}]",
                code="unknown_event",
            )
    return sorted(set(events))


def clean_description(description: Any) -> str:
    if not isinstance(description, str):
        raise InvalidInput("A text.", field="description")
    _storable(description, field="description")
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise InvalidInput(
            f"At most {DESCRIPTION_MAX_LENGTH} characters.",
            field="description",
            code="max_length",
        )
    return description.strip()


def _require_enabled(endpoint: WebhookEndpoint) -> None:
    if endpoint.disabled_at is not None:
        raise ConflictError(
            "The endpoint is disabled: turn it back on first.", field="enabled", code="disabled"
        )


@transaction.atomic
def create_endpoint(
    *, organization: Organization, url: Any, events: Any, description: Any = ""
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (returned once; creating one sends nothing)."""
    endpoint = WebhookEndpoint.objects.create(
        organization=organization,
        url=clean_url(url),
        events=clean_events(events),
        description=clean_description(description),
        secret=signing.new_secret(),
    )
    return endpoint, endpoint.secret


def create_endpoint_from(
    *, organization: Organization, fields: dict[str, Any]
) -> tuple[WebhookEndpoint, str]:
    """create_endpoint from what POST sent: a field it does not know is refused, as PATCH's."""
    _refuse_unknown(fields, NEW_ENDPOINT_FIELDS)
    return create_endpoint(
        organization=organization,
        url=fields.get("url"),
        events=fields.get("events"),
        description=fields.get("description", ""),
    )


def _refuse_unknown(fields: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise InvalidInput("Not a field of an endpoint.", field=unknown[0], code="unknown")


def update_endpoint(
    *, endpoint: WebhookEndpoint, fields: dict[str, Any], now: datetime | None = None
) -> WebhookEndpoint:
    """Change what PATCH names; `enabled` false disables it, true turns it back on."""
    now = now or timezone.now()
    _refuse_unknown(fields, ENDPOINT_FIELDS)
    changes: dict[str, Any] = {}
    if "url" in fields:
        changes["url"] = clean_url(fields["url"])
    if "events" in fields:
        changes["events"] = clean_events(fields["events"])
    if "description" in fields:
        changes["description"] = clean_description(fields["description"])
    enabled = fields.get("enabled")
    if "enabled" in fields and not isinstance(enabled, bool):
        raise InvalidInput("true or false.", field="enabled")
    with transaction.atomic():
        if changes:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(**changes)
        if enabled is False:
            disable_endpoint(endpoint=endpoint, reason="Disabled by the organization.", now=now)
        elif enabled is True:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
                disabled_at=None, disabled_reason="", failing_since=None
            )
    endpoint.refresh_from_db()
    return endpoint


@transaction.atomic
def delete_endpoint(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()  # its deliveries and their log go with it; the events stay


def rotate_secret(*, endpoint: WebhookEndpoint, now: datetime | None = None) -> str:
    """A new secret, returned once; the old one keeps signing for ROTATION_OVERLAP."""
    now = now or timezone.now()
    secret = signing.new_secret()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret = locked.secret
        locked.previous_secret_until = now + ROTATION_OVERLAP
        locked.secret = secret
        locked.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
    endpoint.refresh_from_db()
    return secret


def send_test(*, endpoint: WebhookEndpoint, now: datetime | None = None) -> WebhookDelivery:
    """A webhook.test event to this endpoint alone, whatever it subscribes to."""
    now = now or timezone.now()
    _require_enabled(endpoint)
    with transaction.atomic():
        (event,) = outbox.emit_many(
            [
                outbox.Outgoing(
                    endpoint.organization_id,
                    EventType.WEBHOOK_TEST,
                    now,
                    {"endpoint": {"id": endpoint.pk}, "message": "A test from Comeback."},
                )
            ],
            only_endpoint=endpoint,
        )
        return WebhookDelivery.objects.get(event=event, endpoint=endpoint)


def replay_delivery(*, delivery: WebhookDelivery, now: datetime | None = None) -> WebhookDelivery:
    """Send a delivery's event again, as a new delivery with the same webhook-id, so a
    receiver that deduplicates on it sees the same message."""
    now = now or timezone.now()
    _require_enabled(delivery.endpoint)
    with transaction.atomic():
        again = WebhookDelivery.objects.create(
            organization_id=delivery.organization_id,
            endpoint_id=delivery.endpoint_id,
            event_id=delivery.event_id,
            next_attempt_at=now,
            created_at=now,
        )
        transaction.on_commit(outbox.request_delivery_run)
    return again

from __future__ import annotations

import json
from datetime import datetime

from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from tests.webhooks.receiver import Received
from webhooks import outbox
from webhooks.models import WebhookEndpoint, WebhookEvent
from webhooks.services import create_endpoint
from webhooks.vocabulary import SUBSCRIBABLE

ALL_EVENTS = sorted(SUBSCRIBABLE)


def make_endpoint(org, url: str, events=None) -> tuple[WebhookEndpoint, str]:
    return create_endpoint(organization=org, url=url, events=events or ALL_EVENTS)


def emit(org, *, n: int = 0, at: datetime | None = None) -> WebhookEvent:
    event = outbox.emit(
        organization_id=org.pk,
        type="case.opened",
        at=at or timezone.now(),
        data={"case": {"id": n, "headline": f"Case {n}"}, "customer": {"id": n}},
    )
    assert event is not None
    return event


def verified(secret: str, request: Received) -> dict:
    """The body, once standardwebhooks has verified the request's signature."""
    return Webhook(secret).verify(request.body, request.headers)


def body(request: Received) -> dict:
    return json.loads(request.body)

"""Reads: the event list in commit order, and an endpoint's delivery log."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Prefetch

from accounts.models import Organization
from cxcore.keyset import Position, after_position, keyset_page
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from webhooks.vocabulary import EventType

# Events and the delivery log are kept this long (webhooks.tasks purges them daily).
KEPT_FOR = timedelta(days=30)
EVENT_ORDER = ("txid", "id")
DELIVERY_ORDER = ("-id",)


def settled_before() -> int | None:
    """The oldest transaction still running: every event with a lower txid is committed (or
    gone) and no new one can get one, so a page up to here never changes. None on SQLite.

    Transaction ids are the server's, not one database's: a long transaction anywhere on the
    server (a reconcile batch, an idle session left in a transaction) holds the list back
    until it ends. It delays events, never loses one; deliveries do not wait for it."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        return int(cursor.fetchone()[0])


def events_page(
    *,
    organization: Organization,
    after: Position | None,
    limit: int,
    now: datetime,
) -> tuple[list[WebhookEvent], Position | None]:
    """Up to `limit` events after the position `after` (txid, id), oldest first, and the
    position to ask from next (the last row's, or `after` again when there is nothing new:
    a poller keeps its place). webhook.test goes to one endpoint and is not listed."""
    qs = WebhookEvent.objects.for_org(organization).exclude(type=EventType.WEBHOOK_TEST)
    qs = qs.filter(created_at__gte=now - KEPT_FOR)
    horizon = settled_before()
    if horizon is not None:
        qs = qs.filter(txid__lt=horizon)
    if after is not None:
        qs = qs.filter(after_position(EVENT_ORDER, after))
    events = list(qs.order_by(*EVENT_ORDER)[:limit])
    position = (events[-1].txid, events[-1].pk) if events else after
    return events, position


def deliveries_page(
    *, endpoint: WebhookEndpoint, after: Position | None, limit: int
) -> tuple[list[WebhookDelivery], Position | None]:
    """The endpoint's deliveries newest first with their attempts, and where the next page
    starts (None at the end)."""
    qs = (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .select_related("event")
        .prefetch_related(Prefetch("log", queryset=WebhookAttempt.objects.order_by("number")))
    )
    return keyset_page(qs, order=DELIVERY_ORDER, after=after, limit=limit)

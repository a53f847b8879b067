"""The outbox: producers call `emit` inside the transaction of the change they report.

It writes the event (the log GET /api/v1/events/ reads) and one delivery per enabled endpoint
subscribed to its type, and asks for a delivery run once the transaction commits. A rolled
back change takes its events with it; a committed one is in the table whatever the broker
does, and the beat (or `manage.py deliver_webhooks`) sends it.

Every organization's events are logged, endpoints or not: a POS that prefers to poll the log
has no endpoint, and its log must be whole from the start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    """One event to emit: its organization, type, when it happened and what it says."""

    organization_id: int
    type: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    customer_id: int | None = None


def emit(
    *,
    organization_id: int,
    type: str,
    at: datetime,
    data: dict[str, Any],
    customer_id: int | None = None,
) -> WebhookEvent:
    """Record one event (see emit_many)."""
    (event,) = emit_many([Outgoing(organization_id, type, at, data, customer_id)])
    return event


def endpoints_of(organization_ids: Iterable[int]) -> list[WebhookEndpoint]:
    """The endpoints of these organizations (enabled or not), in one indexed query."""
    ids = set(organization_ids)
    if not ids:
        return []
    return list(
        WebhookEndpoint.objects.filter(organization_id__in=ids).only(
            "id", "organization_id", "events", "disabled_at"
        )
    )


def emit_many(
    items: Sequence[Outgoing],
    *,
    endpoints: list[WebhookEndpoint] | None = None,
    only_endpoint: WebhookEndpoint | None = None,
) -> list[WebhookEvent]:
    """Record many events, of one or several organizations, in a fixed number of queries:
    the endpoints of their organizations (unless given, from endpoints_of), the transaction
    id, the events, the deliveries.

    `only_endpoint` sends to that endpoint alone, whatever it subscribes to (webhook.test)."""
    if not items:
        return []
    if only_endpoint is not None:
        endpoints = [only_endpoint]
    elif endpoints is None:
        endpoints = endpoints_of(item.organization_id for item in items)
    with transaction.atomic(savepoint=False):
        now = timezone.now()
        txid = current_txid()
        events = WebhookEvent.objects.bulk_create(
            WebhookEvent(
                organization_id=item.organization_id,
                type=item.type,
                occurred_at=item.at,
                data=item.data,
                customer_id=item.customer_id,
                txid=txid,
                created_at=now,
            )
            for item in items
        )
        by_org: dict[int, list[WebhookEndpoint]] = {}
        for endpoint in endpoints:
            if endpoint.disabled_at is None:
                by_org.setdefault(endpoint.organization_id, []).append(endpoint)
        deliveries = [
            WebhookDelivery(
                organization_id=event.organization_id,
                endpoint=endpoint,
                event=event,
                next_attempt_at=now,
                created_at=now,
            )
            for event in events
            for endpoint in by_org.get(event.organization_id, [])
            if only_endpoint is not None or event.type in endpoint.events
        ]
        WebhookDelivery.objects.bulk_create(deliveries)
        if deliveries:
            transaction.on_commit(request_delivery_run)
    return events


def current_txid() -> int:
    """The id of the writing transaction on PostgreSQL (the event list's commit order)."""
    if connection.vendor != "postgresql":
        return 0  # SQLite has one writer at a time: ids are in commit order already
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        return int(cursor.fetchone()[0])


# --- asking a worker to deliver now ----------------------------------------------------------
#
# After commit we ask the broker for one delivery run so events go out within a second rather
# than at the next beat. The request path must never wait on Redis (DESIGN.md invariant 5), so
# the task is published from a background thread, and at most one publish is in flight per
# process: a burst of writes asks once. A lost request costs nothing but latency; the beat
# sends whatever is due every few seconds.

_kick_lock = threading.Lock()
_kick_wanted = threading.Event()
_kick_thread: threading.Thread | None = None


def request_delivery_run() -> None:
    if not getattr(settings, "WEBHOOK_DELIVER_ON_COMMIT", True):
        return
    global _kick_thread
    _kick_wanted.set()
    with _kick_lock:
        if _kick_thread is None or not _kick_thread.is_alive():
            _kick_thread = threading.Thread(target=_publish, name="webhook-kick", daemon=True)
            _kick_thread.start()


def _publish() -> None:
    from webhooks.tasks import deliver_webhooks_task

    while _kick_wanted.is_set():
        _kick_wanted.clear()
        try:
            deliver_webhooks_task.apply_async(retry=False, expires=60)
        except Exception:  # the broker is down: the beat will send it
            logger.warning("could not ask for a webhook delivery run", exc_info=True)
            return


def scrub_customer(*, customer_id: int) -> int:
    """An erased customer's events keep their ids and types but lose their headlines (which
    start with a first name), in the log and in every attempt still to come."""
    # Not cxcore.privacy.rewrite: that module imports this one (through cxcore.outbound). The
    # log keeps 30 days, so a customer's events fit in memory; written in batches.
    changed = []
    for event in WebhookEvent.objects.filter(customer_id=customer_id).only("id", "data"):
        case = event.data.get("case") if isinstance(event.data, dict) else None
        if isinstance(case, dict) and case.get("headline"):
            case["headline"] = ""
            changed.append(event)
    return WebhookEvent.objects.bulk_update(changed, ["data"], batch_size=500) if changed else 0

"""Delivering what is due: claim, send, record, and retry on the schedule (webhooks.rules).

Claims are short transactions: due deliveries are taken FOR UPDATE SKIP LOCKED and their next
attempt moved a lease ahead before anything is sent, and that commits. So two workers never
send the same attempt (the second skips the locked rows, then no longer finds them due), no
row lock is held across a 15-second request, and a worker killed mid-batch has its claim come
back when the lease ends: delivery is at least once, with the same webhook-id every time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Membership, Role
from webhooks import rules, signing
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.transport import TIMEOUT_SECONDS, Reply, Sender
from webhooks.vocabulary import DeliveryStatus

logger = logging.getLogger(__name__)

# A batch is claimed, sent, then recorded in one transaction: one commit per batch rather
# than per delivery (the commits were most of the cost). The lease covers the whole batch at
# its slowest (every request timing out), so a live claim never expires under its worker.
BATCH = 20
LEASE = timedelta(seconds=60 + BATCH * TIMEOUT_SECONDS)


@dataclass
class DeliveryRun:
    sent: int = 0
    delivered: int = 0
    failed: int = 0


def deliver_due(
    *,
    now: datetime | None = None,
    batch_size: int = BATCH,
    clock: Callable[[], float] = time.time,
) -> DeliveryRun:
    """Send every delivery due at `now`, batch by batch, and return what happened.

    `now` decides what is due and when retries fall (tests pass it to move through the
    schedule); `clock` gives the webhook-timestamp, which receivers check against their own
    clock, so it stays the real time of sending. Delivery is at least once: a worker that dies
    after sending and before recording has its batch sent again when the lease ends."""
    run = DeliveryRun()
    sender = Sender(allow_private=settings.WEBHOOK_ALLOW_PRIVATE_TARGETS)
    stopped: set[int] = set()
    try:
        while True:
            claimed = _claim(now or timezone.now(), min(batch_size, BATCH))
            replies: list[tuple[WebhookDelivery, Reply]] = []
            for delivery in claimed:
                if delivery.endpoint_id in stopped:
                    continue  # 410 earlier in this run: recording it cancels this delivery
                reply = _send(sender, delivery, now=now or timezone.now(), clock=clock)
                replies.append((delivery, reply))
                if reply.status_code == 410:
                    stopped.add(delivery.endpoint_id)
                run.sent += 1
                if rules.is_success(reply.status_code) and not reply.error:
                    run.delivered += 1
                else:
                    run.failed += 1
            with transaction.atomic():
                WebhookAttempt.objects.bulk_create(
                    _attempt(delivery, reply, now=now or timezone.now())
                    for delivery, reply in replies
                )
                taken, failed = [], []
                for delivery, reply in replies:
                    if rules.is_success(reply.status_code) and not reply.error:
                        taken.append((delivery, reply))
                    else:
                        failed.append((delivery, reply))
                at = now or timezone.now()
                failing = _start_failing_spells({d.endpoint_id for d, _ in failed}, now=at)
                for delivery, reply in failed:
                    if _record_failure(
                        delivery, reply, failing_since=failing.get(delivery.endpoint_id), now=at
                    ):
                        stopped.add(delivery.endpoint_id)
                _record_successes(taken, now=now or timezone.now())
            if len(claimed) < min(batch_size, BATCH):
                return run
    finally:
        sender.close()


def _claim(now: datetime, limit: int) -> list[WebhookDelivery]:
    with transaction.atomic():
        claimed = list(
            WebhookDelivery.objects.due(now)
            .filter(endpoint__disabled_at__isnull=True)
            .select_related("endpoint", "event")
            .order_by("next_attempt_at", "id")
            .select_for_update(skip_locked=True, of=("self",))[:limit]
        )
        if claimed:
            WebhookDelivery.objects.filter(pk__in=[d.pk for d in claimed]).update(
                next_attempt_at=now + LEASE, attempts=F("attempts") + 1
            )
            for delivery in claimed:
                delivery.attempts += 1
    return claimed


def live_secrets(endpoint: WebhookEndpoint, *, at: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous for 24 h after a rotation."""
    found = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_until is not None
        and at < endpoint.previous_secret_until
    ):
        found.append(endpoint.previous_secret)
    return found


def request_parts(
    delivery: WebhookDelivery, *, timestamp: int, at: datetime
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of an attempt (signed with every live secret)."""
    event, endpoint = delivery.event, delivery.endpoint
    body = signing.body_of(
        type=event.type, timestamp=event.occurred_at.isoformat(), data=event.data
    )
    msg_id = event.webhook_id
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header(
            live_secrets(endpoint, at=at), msg_id=msg_id, timestamp=timestamp, body=body
        ),
        "comeback-event-type": event.type,
        "comeback-attempt": str(delivery.attempts),
    }
    return body, headers


def _send(
    sender: Sender, delivery: WebhookDelivery, *, now: datetime, clock: Callable[[], float]
) -> Reply:
    body, headers = request_parts(delivery, timestamp=int(clock()), at=now)
    return sender.post(delivery.endpoint.url, body=body, headers=headers)


def _attempt(delivery: WebhookDelivery, reply: Reply, *, now: datetime) -> WebhookAttempt:
    return WebhookAttempt(
        delivery=delivery,
        number=delivery.attempts,
        at=now,
        status_code=reply.status_code,
        response=reply.body,
        error=reply.error[:500],
        duration_ms=reply.duration_ms,
    )


def _record_successes(taken: list[tuple[WebhookDelivery, Reply]], *, now: datetime) -> None:
    """Taken deliveries are done, set-based (one UPDATE per status code, one for their
    endpoints' failing spells): the common case costs two statements a batch."""
    by_code: dict[int | None, list[int]] = {}
    for delivery, reply in taken:
        by_code.setdefault(reply.status_code, []).append(delivery.pk)
    for code, ids in by_code.items():
        WebhookDelivery.objects.filter(pk__in=ids).update(
            status=DeliveryStatus.DELIVERED,
            next_attempt_at=None,
            delivered_at=now,
            last_attempt_at=now,
            last_status_code=code,
        )
    if taken:
        WebhookEndpoint.objects.filter(
            pk__in={delivery.endpoint_id for delivery, _ in taken}, failing_since__isnull=False
        ).update(failing_since=None)


def _start_failing_spells(endpoint_ids: set[int], *, now: datetime) -> dict[int, datetime | None]:
    """Endpoints that failed in this batch are failing since `now` unless they already were
    (compare-and-swap), and when each spell began: one UPDATE and one read for the batch."""
    if not endpoint_ids:
        return {}
    WebhookEndpoint.objects.filter(pk__in=endpoint_ids, failing_since__isnull=True).update(
        failing_since=now
    )
    return dict(
        WebhookEndpoint.objects.filter(
            pk__in=endpoint_ids, failing_since__isnull=False
        ).values_list("pk", "failing_since")
    )


def _record_failure(
    delivery: WebhookDelivery, reply: Reply, *, failing_since: datetime | None, now: datetime
) -> bool:
    """What follows a failed attempt: a retry on the schedule, or giving up; and the
    endpoint's fate (410 Gone, or three days of failure since `failing_since`, disables it:
    True)."""
    endpoint = delivery.endpoint
    disable_reason = ""
    changes: dict = {"last_attempt_at": now, "last_status_code": reply.status_code}
    delay = rules.next_delay(
        delivery.attempts,
        status_code=reply.status_code,
        retry_after=rules.parse_retry_after(reply.retry_after, now=now),
    )
    if reply.status_code == 410:
        changes |= {"status": DeliveryStatus.FAILED, "next_attempt_at": None}
        disable_reason = "The receiver answered 410 Gone."
    elif delay is None:
        changes |= {"status": DeliveryStatus.FAILED, "next_attempt_at": None}
    else:
        changes["next_attempt_at"] = now + delay
    if not disable_reason and rules.should_disable(failing_since=failing_since, now=now):
        disable_reason = "Every delivery failed for three days."
    # Only while pending: a delivery cancelled meanwhile (its endpoint disabled by an earlier
    # reply of this batch) stays cancelled.
    WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(**changes)
    if disable_reason:
        return disable_endpoint(endpoint=endpoint, reason=disable_reason, now=now, notify=True)
    return False


def disable_endpoint(
    *, endpoint: WebhookEndpoint, reason: str, now: datetime, notify: bool = False
) -> bool:
    """Disable once (compare-and-swap) and cancel what was still to send; the owners are
    emailed after commit, and only by the run that disabled it."""
    with transaction.atomic():
        changed = (
            WebhookEndpoint.objects.enabled()
            .filter(pk=endpoint.pk)
            .update(disabled_at=now, disabled_reason=reason[:200])
        )
        if not changed:
            return False
        WebhookDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.CANCELLED, next_attempt_at=None
        )
        if notify:
            endpoint_id, url = endpoint.pk, endpoint.url
            transaction.on_commit(lambda: _email_owners(endpoint_id, url, reason))
    return True


def _email_owners(endpoint_id: int, url: str, reason: str) -> None:
    endpoint = WebhookEndpoint.objects.select_related("organization").filter(pk=endpoint_id).first()
    if endpoint is None:
        return
    owners = list(
        Membership.objects.filter(organization=endpoint.organization, role=Role.OWNER)
        .select_related("user")
        .values_list("user__email", flat=True)
    )
    if not owners:
        return
    page = f"{settings.SITE_URL}/settings/webhooks/"
    try:
        send_mail(
            subject=f"Comeback stopped sending webhooks to {url[:80]}",
            message=(
                f"{reason}\n\nThe endpoint {url} of {endpoint.organization.name} is disabled: "
                "nothing more is sent to it, and what was still to send is cancelled. The "
                "events stay in GET /api/v1/events/ for 30 days, and each delivery can be "
                f"replayed once the receiver works.\n\nTurn it back on at {page}\n"
            ),
            from_email=None,
            recipient_list=owners,
        )
    except Exception:  # the endpoint is disabled either way; the log says the mail failed
        logger.exception("could not email the owners about webhook endpoint %s", endpoint_id)

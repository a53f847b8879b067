"""What the event log and the delivery log keep: 30 days."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from webhooks.models import WebhookAttempt, WebhookEvent
from webhooks.selectors import KEPT_FOR

BATCH = 5000


def purge_old(*, now: datetime | None = None, batch_size: int = BATCH) -> dict[str, int]:
    """Delete events (their deliveries go with them) and attempts older than 30 days, in
    bounded batches so no transaction holds many rows."""
    now = now or timezone.now()
    cutoff = now - KEPT_FOR
    counts = {"events": 0, "attempts": 0}
    for model, field, name in (
        (WebhookAttempt, "at", "attempts"),
        (WebhookEvent, "created_at", "events"),
    ):
        while True:
            with transaction.atomic():
                ids = list(
                    model.objects.filter(**{f"{field}__lt": cutoff})
                    .order_by("pk")
                    .values_list("pk", flat=True)[:batch_size]
                )
                if ids:
                    model.objects.filter(pk__in=ids).delete()
            counts[name] += len(ids)
            if len(ids) < batch_size:
                break
    return counts

"""The event types a webhook endpoint may subscribe to, written once."""

from __future__ import annotations

from django.db import models


class EventType(models.TextChoices):
    CASE_OPENED = "case.opened", "A recovery case opened"
    CASE_ACKNOWLEDGED = "case.acknowledged", "A case was acknowledged"
    CASE_ESCALATED = "case.escalated", "A case was escalated"
    CASE_REMINDER = "case.reminder", "A customer with an open case booked a visit"
    CASE_RESOLVED = "case.resolved", "A case was resolved"
    CASE_DISMISSED = "case.dismissed", "A case was dismissed"
    CASE_OUTCOME_MEASURED = "case.outcome_measured", "A case's outcome was measured"
    PROMPT_SHOWN = "prompt.shown", "A prompt was shown at a till"
    CARE_OPENED = "care.opened", "A care case opened"
    EPISODE_CREATED = "episode.created", "An episode was logged"
    CUSTOMER_MERGED = "customer.merged", "Two customers were merged"
    CUSTOMER_ERASED = "customer.erased", "A customer's data was erased"
    WEBHOOK_TEST = "webhook.test", "A test sent on request"


# What an endpoint may subscribe to: webhook.test goes only to the endpoint it was asked for.
SUBSCRIBABLE = frozenset(EventType.values) - {EventType.WEBHOOK_TEST}


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"
    CANCELLED = "cancelled", "Cancelled (endpoint disabled or deleted)"

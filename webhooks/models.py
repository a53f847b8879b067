"""Outbound webhooks: endpoints, the event log (the outbox), deliveries and their attempts.

An event row and one delivery row per subscribed endpoint are written in the transaction of
the change they report (webhooks.outbox.emit), so a rolled-back change sends nothing and a
committed one is delivered eventually, whatever happens to the broker.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from accounts.models import Organization, OrgScopedQuerySet
from webhooks.vocabulary import DeliveryStatus


class WebhookEndpointQuerySet(OrgScopedQuerySet["WebhookEndpoint"]):
    def enabled(self) -> WebhookEndpointQuerySet:
        return self.filter(disabled_at__isnull=True)


class WebhookEndpoint(models.Model):
    """Where an organization wants its events sent, and the secret they are signed with.

    The secret must be kept readable: every request is signed with it (HMAC), so unlike an API
    key it cannot be stored as a hash. It is shown once, when made or rotated, and never again
    by the API or the pages.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list)
    secret = models.CharField(max_length=100)
    # After a rotation the old secret signs too, until previous_secret_until, so a receiver can
    # switch to the new secret without dropping a request.
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    # The first failed attempt since the last success: three days of it disables the endpoint.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url

    @property
    def is_enabled(self) -> bool:
        return self.disabled_at is None


class WebhookEvent(models.Model):
    """One change, as every subscriber receives it and as GET /api/v1/events/ lists it.

    `txid` is the PostgreSQL transaction that wrote it. Ids are handed out before commit, so a
    transaction can commit an id lower than one already read; the event list orders by
    (txid, id) and shows only transactions older than every one still running, so a poller's
    cursor never steps over an event committed late (see webhooks.selectors.events_page).
    """

    # webhook_event_list leads with organization and serves its lookups.
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=40)
    occurred_at = models.DateTimeField()
    data = models.JSONField(default=dict)
    txid = models.BigIntegerField(default=0)
    # Whose event it is, if a customer's: erasing the customer scrubs their events.
    customer_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["txid", "id"]
        indexes = [
            # The event list: one organization's events in commit order (a keyset).
            models.Index(fields=["organization", "txid", "id"], name="webhook_event_list"),
            # The daily purge of events older than 30 days.
            models.Index(fields=["created_at"], name="webhook_event_age"),
            models.Index(
                fields=["customer_id"],
                condition=Q(customer_id__isnull=False),
                name="webhook_event_customer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.webhook_id}"

    @property
    def webhook_id(self) -> str:
        """The `webhook-id` header: the same for every attempt and replay of this event."""
        return f"msg_{self.uid.hex}"


class WebhookDeliveryQuerySet(OrgScopedQuerySet["WebhookDelivery"]):
    def due(self, now) -> WebhookDeliveryQuerySet:
        return self.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)


class WebhookDelivery(models.Model):
    """One event to one endpoint: retried on its schedule until taken, given up or cancelled."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    # webhook_delivery_log leads with endpoint and serves its lookups.
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    # When the next attempt is due (None once delivered, failed or cancelled). A claimed
    # delivery has it moved a lease ahead, so a dead worker's claim comes back by itself.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The sender: pending deliveries by due time; what is done leaves the index.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_due",
            ),
            # An endpoint's delivery log, newest first (a keyset).
            models.Index(fields=["endpoint", "-id"], name="webhook_delivery_log"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} of event {self.event_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One request sent: what came back, kept 30 days."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveSmallIntegerField()
    at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    # The first 2 KB of the response body, as text.
    response = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["delivery", "number", "id"]
        indexes = [models.Index(fields=["at"], name="webhook_attempt_age")]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"

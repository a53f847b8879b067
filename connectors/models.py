"""What other systems send in: a Square connection and what its notifications left behind,
the POS's checks, and each organization's map from a comp or refund reason to a touchpoint."""

from __future__ import annotations

import secrets
from typing import Self

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Organization, OrgScopedQuerySet
from cxcore.models import Episode


class SquareConnectionQuerySet(OrgScopedQuerySet["SquareConnection"]):
    def active(self) -> Self:
        return self.filter(revoked_at__isnull=True)


def new_token() -> str:
    # 256 random bits: the URL names the organization, so it must not be guessable.
    return secrets.token_urlsafe(32)


class SquareConnection(models.Model):
    """An organization's Square account: where its notifications arrive and how they are signed.

    The signature key is kept as Square gives it: verifying a signature needs the key itself
    (an HMAC), so it cannot be stored hashed like an API key. The token in the notification URL
    is what routes a notification to its organization; the signature is what makes it trusted.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="square_connections"
    )
    token = models.CharField(max_length=64, unique=True, default=new_token)
    signature_key = models.CharField(max_length=200)
    # {"<Square location id>": <our location's id>}
    locations = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = SquareConnectionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(revoked_at__isnull=True),
                name="square_connection_one_active_per_org",
            )
        ]

    def __str__(self) -> str:
        return f"Square for {self.organization_id} ({'revoked' if self.revoked_at else 'active'})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class SquareEvent(models.Model):
    """A notification taken in, by Square's event id: a retry or replay of it changes nothing.

    Written in the same transaction as its effects, so a failed event is not marked as seen.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=100)
    type = models.CharField(max_length=60)
    received_at = models.DateTimeField()
    # What became of it: "recorded", "pending" (waiting for its payment), "skipped" …
    outcome = models.CharField(max_length=20, blank=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "event_id"], name="square_event_once_per_org"
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class SquarePayment(models.Model):
    """The latest state seen of a Square payment, so updates arriving out of order are folded
    by Square's own `updated_at`, and a refund can find its payment's customer."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    payment_id = models.CharField(max_length=100)
    status = models.CharField(max_length=20)
    square_customer_id = models.CharField(max_length=100, blank=True)
    square_location_id = models.CharField(max_length=100, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, blank=True)
    occurred_at = models.DateTimeField()
    square_updated_at = models.DateTimeField()
    # The visit it became, once it was COMPLETED with a customer.
    episode = models.ForeignKey(
        Episode, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "payment_id"], name="square_payment_once_per_org"
            )
        ]

    def __str__(self) -> str:
        return f"payment {self.payment_id} ({self.status})"


class SquareRefund(models.Model):
    """A Square refund. One that arrives before its payment (or for a payment with no customer)
    waits here, episode empty, until the payment names its customer: never dropped."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    refund_id = models.CharField(max_length=100)
    payment_id = models.CharField(max_length=100)
    status = models.CharField(max_length=20)
    reason = models.CharField(max_length=500, blank=True)
    square_location_id = models.CharField(max_length=100, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, blank=True)
    occurred_at = models.DateTimeField()
    square_updated_at = models.DateTimeField()
    episode = models.ForeignKey(
        Episode, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "refund_id"], name="square_refund_once_per_org"
            )
        ]
        indexes = [
            # A payment that names its customer finds the refunds waiting for it.
            models.Index(fields=["organization", "payment_id"], name="square_refund_by_payment"),
        ]

    def __str__(self) -> str:
        return f"refund {self.refund_id} ({self.status})"


class Check(models.Model):
    """A check the POS rang up, by its external id: a retry returns the first result, the same
    id with a different check is a conflict (409)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    external_id = models.CharField(max_length=100)
    # sha256 of the parsed check: tells a retry from a different check under the same id.
    fingerprint = models.CharField(max_length=64)
    order_episode = models.ForeignKey(
        Episode, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    incident_episode_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "external_id"], name="check_external_id_unique_per_org"
            )
        ]

    def __str__(self) -> str:
        return f"check {self.external_id}"


class ReasonMap(models.Model):
    """An organization's own reason map; without a row, the defaults (connectors.reasons)."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="reason_map"
    )
    # [{"phrase": "never rung in", "touchpoint": "order_accuracy", "never_came": true}, …]
    entries = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrgScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"reason map of {self.organization_id}"

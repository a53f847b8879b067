"""Partners (the valet company, a delivery app) and the incidents their touchpoints cause.

The guest relationship stays with the business: a bad experience on a partner-run touchpoint
opens (or extends) the customer's recovery case as any other does, and beside it a partner
incident, the operational fix the partner owes, with its own status.
"""

from __future__ import annotations

from typing import Self

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from accounts.models import Location, Organization, OrgScopedQuerySet
from cxcore.models import Customer, Episode
from partners.vocabulary import OPEN_STATUSES, IncidentStatus
from recovery.models import RecoveryCase

__all__ = ["IncidentStatus", "Partner", "PartnerIncident"]


class PartnerQuerySet(OrgScopedQuerySet["Partner"]):
    def active(self) -> Self:
        return self.filter(is_active=True)


class Partner(models.Model):
    """A third party that runs some of the organization's touchpoints.

    `touchpoints` holds codes of `cxcore.vocabulary.Touchpoint`; a code is run by at most one
    active partner of an organization (`partners.services` checks it under a lock on the
    organization row: a JSON list has no unique index)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    contact_name = models.CharField(max_length=100, blank=True)
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=32, blank=True)
    touchpoints = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    objects = PartnerQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                "organization",
                name="partner_name_unique_per_org",
            )
        ]

    def __str__(self) -> str:
        return self.name


class PartnerIncidentQuerySet(OrgScopedQuerySet["PartnerIncident"]):
    def unclosed(self) -> Self:
        """Incidents the partner still owes an answer or a fix on."""
        return self.filter(status__in=OPEN_STATUSES)


class PartnerIncident(models.Model):
    """One failure on a partner's touchpoint: one negative episode, for one partner.

    Opened beside the customer's recovery case (`recovery_case`, kept if the case goes), and
    closed when the partner fixed it or disputed it was theirs."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="incidents")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="+")
    recovery_case = models.ForeignKey(
        RecoveryCase, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Where and when it happened (the episode's), so a manager's location limit and the
    # monthly scorecard read the incident alone.
    location = models.ForeignKey(
        Location, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    occurred_at = models.DateTimeField()
    # The partner's touchpoint codes the episode names (usually one).
    touchpoints = models.JSONField(default=list, blank=True)
    experience = models.SmallIntegerField()
    status = models.CharField(
        max_length=10, choices=IncidentStatus.choices, default=IncidentStatus.OPEN
    )
    opened_at = models.DateTimeField()
    # The partner's first answer (an answer, a fix or a dispute, whichever came first): the
    # scorecard's time to answer is answered_at - opened_at.
    answered_at = models.DateTimeField(null=True, blank=True)
    answer = models.TextField(blank=True, max_length=2000)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = PartnerIncidentQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            # One incident per partner and episode, whatever races (two sweeps, a retried
            # batch): the opening inserts with ON CONFLICT DO NOTHING against it.
            models.UniqueConstraint(
                fields=["partner", "episode"], name="partner_incident_once_per_episode"
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in IncidentStatus]),
                name="partner_incident_status_known",
            ),
        ]
        indexes = [
            # A partner's page and the API: its incidents, newest first, keyset-paged.
            models.Index(fields=["partner", "-opened_at", "-id"], name="partner_incident_recent"),
            # The monthly scorecard: an organization's incidents of a month.
            models.Index(fields=["organization", "occurred_at"], name="partner_incident_org_month"),
        ]

    def __str__(self) -> str:
        return f"incident #{self.pk} for {self.partner_id} ({self.status})"

    @property
    def is_closed(self) -> bool:
        return self.status not in OPEN_STATUSES

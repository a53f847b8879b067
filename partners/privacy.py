"""Partners' part of a customer's export and erasure (cxcore.privacy). The export lists the
partner incidents about the customer. What the partner answered about a failure may name the
guest ("Mrs Lyon's car…"), so an erasure replaces it with the placeholder. The incidents stay,
without text: the scorecard's counts and times do not change."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from cxcore.models import Customer
from cxcore.privacy import (
    ERASED,
    ErasureContext,
    ExportSection,
    paged,
    register_erase_step,
    register_export_section,
)
from partners.models import PartnerIncident


class PartnerIncidentExportSerializer(serializers.ModelSerializer):
    partner: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="name", read_only=True
    )
    location: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )

    class Meta:
        model = PartnerIncident
        fields = [
            "id",
            "partner",
            "episode",
            "recovery_case",
            "location",
            "occurred_at",
            "touchpoints",
            "experience",
            "status",
            "opened_at",
            "answered_at",
            "answer",
            "closed_at",
        ]
        read_only_fields = fields


def customer_incidents(customer: Customer) -> Any:
    return paged(
        PartnerIncident.objects.filter(customer=customer).select_related("partner", "location")
    )


def erase_incident_answers(context: ErasureContext) -> dict[str, int]:
    answers = (
        PartnerIncident.objects.filter(customer_id=context.customer_id)
        .exclude(answer__in=("", ERASED))
        .update(answer=ERASED)
    )
    return {"partner_incident_answers": answers}


def register() -> None:
    """Called from PartnersConfig.ready()."""
    register_export_section(
        ExportSection(
            "partner_incidents",
            customer_incidents,
            PartnerIncidentExportSerializer,
            "Failures on touchpoints a partner runs (valet, delivery), with the partner's answer.",
        )
    )
    register_erase_step("partners", erase_incident_answers)

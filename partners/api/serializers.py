"""The partners API's shapes: read-only, one serializer per resource."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from rest_framework import serializers

from cxcore.rules import check_date_in_range
from cxcore.vocabulary import Touchpoint
from partners.models import Partner, PartnerIncident
from partners.selectors import ScorecardRow


class PartnerSerializer(serializers.ModelSerializer):
    # Plain text in the schema: blank when no email was given ("" is no `format: email`).
    contact_email = serializers.CharField(read_only=True)
    touchpoints = serializers.ListField(
        child=serializers.ChoiceField(choices=Touchpoint.choices), read_only=True
    )

    class Meta:
        model = Partner
        fields = [
            "id", "name", "contact_name", "contact_email", "contact_phone", "touchpoints",
            "is_active", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class IncidentSerializer(serializers.ModelSerializer):
    location: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    touchpoints = serializers.ListField(
        child=serializers.ChoiceField(choices=Touchpoint.choices), read_only=True
    )

    class Meta:
        model = PartnerIncident
        fields = [
            "id", "partner", "status", "customer", "episode", "recovery_case", "location",
            "occurred_at", "touchpoints", "experience", "opened_at", "answered_at", "answer",
            "closed_at",
        ]  # fmt: skip
        read_only_fields = fields


class IncidentPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = IncidentSerializer(many=True)


# A month as YYYY-MM within the range every date keeps to (cxcore.rules: 2000 to 2100), so
# the schema's pattern admits exactly what the API accepts.
MONTH_PATTERN = r"^(20\d\d-(0[1-9]|1[0-2])|2100-(0[1-9]|1[0-2]))$"


class MonthField(serializers.RegexField):
    """A month as YYYY-MM, from 2000-01 to 2100-12."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(MONTH_PATTERN, max_length=7, **kwargs)

    def run_validation(self, data: Any = serializers.empty) -> date | None:
        # The text's own checks (the pattern, the length) first, then the month it names.
        text = super().run_validation(data)
        if text is None or text == "":
            return None
        try:
            value = datetime.strptime(text, "%Y-%m").date()
            check_date_in_range(value)
        except ValueError as exc:
            raise serializers.ValidationError("A month as YYYY-MM, e.g. 2026-11.") from exc
        return value


class ScorecardQuerySerializer(serializers.Serializer):
    month = MonthField(required=False, help_text="YYYY-MM. Default: the last full month.")


class ScorecardRowSerializer(serializers.Serializer):
    partner = serializers.IntegerField(source="partner.pk")
    name = serializers.CharField(source="partner.name")
    is_active = serializers.BooleanField(source="partner.is_active")
    involved_visits = serializers.IntegerField(
        help_text="Visits and orders of the month tagged with a touchpoint the partner runs."
    )
    failures = serializers.IntegerField(help_text="The partner's incidents of the month.")
    failures_per_100_visits = serializers.FloatField(
        source="failures_per_100", allow_null=True, help_text="Null without involved visits."
    )
    answered = serializers.IntegerField()
    median_hours_to_answer = serializers.FloatField(allow_null=True)
    affected_customers = serializers.IntegerField()
    returned = serializers.IntegerField(source="returned.numerator")
    return_measured = serializers.IntegerField(
        source="returned.denominator",
        help_text="Affected customers whose outcome window has ended.",
    )
    return_rate = serializers.FloatField(source="returned.value", allow_null=True)
    still_in_window = serializers.IntegerField()

    def to_representation(self, instance: ScorecardRow) -> dict[str, Any]:
        return super().to_representation(instance)


class ScorecardSerializer(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(help_text="Exclusive: the next month's first moment.")
    outcome_window_days = serializers.IntegerField()
    partners = ScorecardRowSerializer(many=True, source="rows")

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["month"] = f"{instance.month:%Y-%m}"
        return data

"""GET /api/v1/insights/evidence/: the care cases open now and why (lapsing or drifting, with
their why-now lines), does care work (the holdout comparison) and what works (the
per-playbook ledger of action variants), as on the insights page.

Its own resource rather than more of /insights/summary/: the summary reads a period, while
the evidence is every randomised case since the draws began (a period would only thin it).
The serializers below are both the response and its schema.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.tenancy import TenantAPIMixin
from cxcore.api.schema import error_response
from cxcore.db_router import replica_reads
from recovery.evidence import evidence

SLUG_PATTERN = r"^[-a-zA-Z0-9_]{1,60}$"  # what SlugField(max_length=60) takes


class EvidenceQuerySerializer(serializers.Serializer):
    location = serializers.SlugField(required=False, max_length=60)


class ShareSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    of = serializers.IntegerField(source="n")
    value = serializers.FloatField(allow_null=True, help_text="count / of; null with none.")
    low = serializers.FloatField(allow_null=True, help_text="95% Wilson interval, low end.")
    high = serializers.FloatField(allow_null=True, help_text="95% Wilson interval, high end.")


class DifferenceSerializer(serializers.Serializer):
    value = serializers.FloatField(help_text="The first share minus the second (0.15 = 15 points).")
    low = serializers.FloatField(help_text="95% Newcomb interval, low end.")
    high = serializers.FloatField(help_text="95% Newcomb interval, high end.")
    significant = serializers.BooleanField(
        source="is_significant", help_text="The interval leaves out zero."
    )


class ComparisonSerializer(serializers.Serializer):
    enough_data = serializers.BooleanField(
        source="is_enough", help_text="Both groups have at least `min_per_arm` cases."
    )
    difference = DifferenceSerializer(
        allow_null=True, help_text="Null until both groups have enough data."
    )


class HoldoutSerializer(serializers.Serializer):
    window_days = serializers.IntegerField(source="window.days")
    holdout_share = serializers.IntegerField(help_text="Percent of care cases held out now.")
    worked = ShareSerializer(help_text="Came back within the window, of the worked cases.")
    held_out = ShareSerializer(help_text="Came back within the window, of the held-out cases.")
    comparison = ComparisonSerializer(help_text="Worked minus held out.")
    sentence = serializers.CharField()


class VariantSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="variant_id")
    name = serializers.CharField()
    cases = serializers.IntegerField()
    kept = serializers.BooleanField(source="is_kept")
    recovered = ShareSerializer(help_text="Recovered, of the cases whose outcome is measured.")
    spend_back = ShareSerializer(
        help_text="Mean spend per visit in the window at least their own mean of the 90 days "
        "before, of the cases whose window ended with a spend before."
    )
    versus_first = ComparisonSerializer(
        allow_null=True, help_text="Recovered share against the playbook's first variant."
    )
    sentence = serializers.CharField()


class PlaybookLedgerSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="playbook_id")
    name = serializers.CharField()
    experiment_running = serializers.BooleanField(source="is_running")
    cases = serializers.IntegerField()
    variants = VariantSerializer(many=True)


class CareLineSerializer(serializers.Serializer):
    case = serializers.IntegerField(source="case_id")
    first_name = serializers.CharField()
    care_reason = serializers.CharField(help_text="lapsing or drifting.")
    why_now = serializers.CharField()


class CareNowSerializer(serializers.Serializer):
    lapsing = serializers.IntegerField(help_text="Open worked care cases: gone quiet.")
    drifting = serializers.IntegerField(help_text="Open worked care cases: experiences sliding.")
    newest = CareLineSerializer(many=True, help_text="The newest few, with why now.")


class EvidenceSerializer(serializers.Serializer):
    location = serializers.CharField(allow_null=True)
    min_per_arm = serializers.IntegerField()
    care_now = CareNowSerializer()
    holdout = HoldoutSerializer()
    playbooks = PlaybookLedgerSerializer(many=True)


class InsightsEvidenceView(TenantAPIMixin, APIView):
    @extend_schema(
        parameters=[
            # Written out, not derived from the serializer: the schema's text fields are read
            # as free text (cxcore.api.schema), and a slug is not.
            OpenApiParameter(
                "location",
                str,
                pattern=SLUG_PATTERN,
                allow_blank=False,
                description="A location's slug: only that location.",
            )
        ],
        responses={
            200: EvidenceSerializer,
            404: error_response("No location with that slug that this key or member may use."),
        },
        summary="Does care work (worked vs held out) and which playbook variants work best",
    )
    @replica_reads()
    def get(self, request: Request) -> Response:
        if self.tenant.api_key is None and not self.tenant.is_manager_or_owner:
            raise PermissionDenied("Insights are for owners and managers.")
        query = EvidenceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        slug = query.validated_data.get("location")
        location = self.tenant.resolve_location(slug) if slug else None
        result = evidence(tenant=self.tenant, now=timezone.now(), location=location)
        data = {
            "location": location.slug if location else None,
            "min_per_arm": result.min_per_arm,
            "care_now": result.care_now,
            "holdout": result.holdout,
            "playbooks": result.playbooks,
        }
        return Response(EvidenceSerializer(data).data)

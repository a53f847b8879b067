"""The customer's data rights over the API: export the whole record, or erase it.

Owners and organization-wide API keys only: both reach every location's data, which an export
must show and an erasure must clear. The role is checked before the customer is looked up, so
a 403 says nothing about which customers exist; another organization's customer is a 404.
"""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.tenancy import IsTenantMember, TenantAPIMixin, tenant_for_request
from cxcore.api.schema import error_response
from cxcore.api.serializers import StringField
from cxcore.audit import record_read
from cxcore.models import Customer, Erasure, ReadAction
from cxcore.privacy import (
    EXPORT_FORMAT,
    REASON_HELP,
    REASON_MAX_LENGTH,
    erase_customer,
    export_customer,
    export_document_fields,
)


class IsOwnerOrOrgWideKey(permissions.BasePermission):
    message = "Exporting or erasing a customer's data is for owners and organization-wide keys."

    def has_permission(self, request: Request, view: Any) -> bool:
        tenant = tenant_for_request(request)
        return tenant is not None and tenant.is_org_admin


class CustomerExportSchemaSerializer(serializers.Serializer):
    """For the schema only: the document `cxcore.privacy.export_customer` streams. Its fields
    are the builder's own (the head and every registered section), read when the schema is
    generated, so a section an app registers is documented with it."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return export_document_fields()


class EraseInputSerializer(serializers.Serializer):
    reason = StringField(max_length=REASON_MAX_LENGTH, help_text=REASON_HELP)


class ErasureSerializer(serializers.ModelSerializer):
    customer = serializers.IntegerField(source="customer_id", read_only=True)
    cleared = serializers.DictField(
        child=serializers.IntegerField(),
        read_only=True,
        help_text="Rows changed, by kind (identifiers, episode_texts, case_actions, …).",
    )

    class Meta:
        model = Erasure
        fields = ["id", "customer", "erased_at", "reason", "cleared"]
        read_only_fields = fields


FORBIDDEN = error_response("Managers, staff and keys limited to a location may not.")
NOT_FOUND = error_response("No such customer in this organization.")


class CustomerExportView(TenantAPIMixin, APIView):
    queryset = Customer.objects.all()
    permission_classes = [IsTenantMember, IsOwnerOrOrgWideKey]

    @extend_schema(
        responses={
            200: OpenApiResponse(
                CustomerExportSchemaSerializer,
                f"The record as one JSON document ({EXPORT_FORMAT}).",
            ),
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
        summary="Export everything held about a customer (their right of access)",
        description=(
            "The customer, identifiers, every episode, experience corrections, cases with their "
            "actions, triggers and history, consents and the audit of reads, as one JSON "
            "document streamed from one snapshot. Owners and organization-wide API keys only."
        ),
    )
    def get(self, request: Request, pk: int) -> StreamingHttpResponse:
        customer = generics.get_object_or_404(self.get_queryset(), pk=pk)
        # Recorded before the snapshot opens, so the export lists itself among the reads.
        record_read(
            tenant=self.tenant,
            action=ReadAction.EXPORT,
            customer_ids=[customer.pk],
            request=request,
        )
        response = StreamingHttpResponse(
            export_customer(customer=customer), content_type="application/json"
        )
        response["Content-Disposition"] = f'attachment; filename="customer-{customer.pk}.json"'
        response["Cache-Control"] = "no-store"
        return response


class CustomerEraseView(TenantAPIMixin, APIView):
    queryset = Customer.objects.all()
    permission_classes = [IsTenantMember, IsOwnerOrOrgWideKey]

    @extend_schema(
        request=EraseInputSerializer,
        responses={
            200: ErasureSerializer,
            400: error_response("`reason` is missing, blank or too long."),
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
        summary="Erase a customer's personal data (their right to erasure)",
        description=(
            "Deletes the identifiers; blanks the name, notes and usual order; strips every "
            "episode's summary, item names and external id (kind, time, location, experience, "
            "touchpoints and amounts stay, so counts and insights do not change); blanks the "
            "reasons of experience corrections; replaces case actions, dismissal reasons and "
            "history notes with a placeholder; deletes stored idempotent responses that "
            "mention the customer; dismisses their open cases (reason `erased`). The customer "
            "row stays, anonymised, and the erasure is recorded with `reason`, which must hold "
            "no personal data. Safe to repeat. The person is no longer recognised: a later "
            "episode with the same phone, email, card or POS id creates a new customer. "
            "Owners and organization-wide API keys only."
        ),
    )
    def post(self, request: Request, pk: int) -> Response:
        customer = generics.get_object_or_404(self.get_queryset(), pk=pk)
        body = EraseInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        erasure = erase_customer(
            customer=customer,
            reason=body.validated_data["reason"],
            by_user=self.tenant.user,
            by_api_key=self.tenant.api_key,
        )
        response = Response(ErasureSerializer(erasure).data)
        response["Cache-Control"] = "no-store"
        return response

"""The read audit over the API: who read which customers' data, newest first.

Owners and organization-wide API keys only, as for the export (cxcore.api.privacy): the audit
spans every location. The role is checked before anything is looked up, so a 403 says nothing
about which customers exist; another organization's customer is a 404.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.errors import NotFoundError
from accounts.tenancy import IsTenantMember, TenantAPIMixin
from cxcore.api.pagination import PAGE_PARAMETERS, next_link, page_size_from, position_from
from cxcore.api.privacy import IsOwnerOrOrgWideKey
from cxcore.api.schema import error_response
from cxcore.audit import AUDIT_POSITION, read_audit_page
from cxcore.keyset import MAX_DB_INT
from cxcore.models import Customer, ReadAudit


class MayReadTheAudit(IsOwnerOrOrgWideKey):
    message = "The read audit is for owners and organization-wide keys."


class ReadAuditQuerySerializer(serializers.Serializer):
    customer = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_DB_INT,
        help_text="Only the reads that showed this customer.",
    )


class ReadAuditSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReadAudit
        fields = ["id", "at", "action", "actor_kind", "actor_id", "customer_ids", "request_id"]
        read_only_fields = fields
        extra_kwargs = {
            "actor_kind": {"help_text": "`user`: a staff member; `api_key`: an API key."},
            "actor_id": {"help_text": "The member's user id or the API key's id."},
            "request_id": {"help_text": "The request's X-Request-ID."},
        }

    # A JSONField reads as "any" in the schema: say it is a list of ids.
    customer_ids = serializers.ListField(
        child=serializers.IntegerField(),
        read_only=True,
        help_text="The customers shown, in the order shown.",
    )


class ReadAuditPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = ReadAuditSerializer(many=True)


class ReadAuditListView(TenantAPIMixin, APIView):
    queryset = ReadAudit.objects.all()
    permission_classes = [IsTenantMember, MayReadTheAudit]

    @extend_schema(
        parameters=[ReadAuditQuerySerializer, *PAGE_PARAMETERS],
        responses={
            200: ReadAuditPageSerializer,
            400: error_response("A bad `customer`, `cursor` or `page_size`."),
            403: error_response("Managers, staff and keys limited to a location may not."),
            404: error_response("No such customer in this organization."),
        },
        summary="The read audit: who read which customers' data, where and when",
        description=(
            "Every read of customer data (the customer page and API, the timeline, the till "
            "sidebar, search results, exports) leaves one row: the member or key by id, the "
            "customers shown by id, the action, the request id and the time. No personal "
            "data. Newest first, keyset-paged. Owners and organization-wide API keys only."
        ),
    )
    def get(self, request: Request) -> Response:
        query = ReadAuditQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        customer_id = query.validated_data.get("customer")
        if (
            customer_id is not None
            and not Customer.objects.for_tenant(self.tenant).filter(pk=customer_id).exists()
        ):
            raise NotFoundError("No such customer.", field="customer")
        limit = page_size_from(request)
        after = position_from(request, shape=AUDIT_POSITION)
        rows, following = read_audit_page(
            self.get_queryset(), customer_id=customer_id, after=after, limit=limit
        )
        return Response(
            {
                "next": next_link(request, following),
                "results": ReadAuditSerializer(rows, many=True).data,
            }
        )

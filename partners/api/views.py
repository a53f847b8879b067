"""Partners over REST, read-only: the partners, a partner's incidents (keyset-paged,
filtered) and the monthly scorecard. For owners, managers and API keys; staff get 403 (the
role is checked before any lookup). Another organization's partner is not in the scoped
queryset: 404. A key or member limited to locations sees the incidents of those locations."""

from __future__ import annotations

from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.errors import NotFoundError
from accounts.tenancy import TenantAPIMixin
from cxcore.api.pagination import (
    PAGE_PARAMETERS,
    KeysetPageSchema,
    next_link,
    page_size_from,
    position_from,
)
from cxcore.api.schema import results_list
from partners.api import serializers as s
from partners.filters import IncidentFilter
from partners.models import Partner, PartnerIncident
from partners.selectors import (
    INCIDENT_POSITION,
    incident_page,
    incidents_at_locations,
    last_full_month,
    scorecard,
)


class PartnersAPIMixin(TenantAPIMixin):
    def require_manager_or_key(self) -> None:
        if self.tenant.api_key is None and not self.tenant.is_manager_or_owner:
            raise PermissionDenied("Partners are for owners, managers and API keys.")


class PartnerListView(PartnersAPIMixin, APIView):
    queryset = Partner.objects.all()

    @extend_schema(
        responses={200: results_list("PartnerList", s.PartnerSerializer(many=True))},
        summary="The organization's partners (valet, delivery…) and the touchpoints they run",
    )
    def get(self, request: Request) -> Response:
        self.require_manager_or_key()
        partners = self.get_queryset().order_by("name", "id")
        return Response({"results": s.PartnerSerializer(partners, many=True).data})


class PartnerIncidentListView(PartnersAPIMixin, generics.GenericAPIView):
    queryset = PartnerIncident.objects.all()
    filter_backends = [DjangoFilterBackend]
    filterset_class = IncidentFilter
    schema = KeysetPageSchema()

    def scope_queryset(self, queryset):
        return incidents_at_locations(queryset, self.tenant)

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: s.IncidentPageSerializer},
        summary="A partner's incidents, newest first",
        operation_id="partner_incidents_list",
    )
    def get(self, request: Request, pk: int) -> Response:
        self.require_manager_or_key()
        partner = Partner.objects.for_tenant(self.tenant).filter(pk=pk).first()
        if partner is None:
            raise NotFoundError("No such partner.")
        qs = self.filter_queryset(self.get_queryset().filter(partner=partner))
        after = position_from(request, shape=INCIDENT_POSITION)
        rows, following = incident_page(qs, after=after, limit=page_size_from(request))
        return Response(
            {
                "next": next_link(request, following),
                "results": s.IncidentSerializer(rows, many=True).data,
            }
        )


class ScorecardView(PartnersAPIMixin, APIView):
    @extend_schema(
        parameters=[s.ScorecardQuerySerializer],
        responses={200: s.ScorecardSerializer},
        summary="The monthly partner scorecard: failures per 100 visits, time to answer, "
        "return rate",
        description="Per partner, for one calendar month in the organization's time zone. "
        "Involved visits are visits and orders tagged with a touchpoint the partner runs; the "
        "return rate counts only affected customers whose outcome window has ended.",
    )
    def get(self, request: Request) -> Response:
        self.require_manager_or_key()
        query = s.ScorecardQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        month = query.validated_data.get("month") or last_full_month(timezone.localdate())
        card = scorecard(tenant=self.tenant, month=month, now=timezone.now())
        return Response(s.ScorecardSerializer(card).data)

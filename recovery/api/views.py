"""Cases and playbooks over REST: parse → scope and authorize → call a service → serialize."""

from __future__ import annotations

from typing import Any

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.errors import NotFoundError
from accounts.tenancy import TenantAPIMixin
from cxcore.api.idempotency import IDEMPOTENCY_HEADER, idempotency_key_from, respond
from cxcore.api.lookup import lookup_data
from cxcore.api.pagination import (
    PAGE_PARAMETERS,
    KeysetPageSchema,
    next_link,
    page_size_from,
    position_from,
)
from cxcore.api.schema import (
    CUSTOMER_ERASED_OR_KEY_IN_USE,
    NO_SUCH_CUSTOMER_OR_LOCATION,
    error_response,
)
from cxcore.api.serializers import CustomerSerializer, EpisodeInputSerializer
from cxcore.audit import record_read
from cxcore.db_router import replica_reads
from cxcore.models import Customer, ReadAction
from cxcore.selectors import customer_id_for, customers_with_identifiers
from cxcore.services import record_episode
from recovery.api import serializers as s
from recovery.filters import CaseFilter
from recovery.insights import summary as insights_summary
from recovery.models import Playbook, RecoveryCase
from recovery.selectors import QUEUE_POSITION, case_detail, case_queue, cases_at_locations
from recovery.services import (
    Actor,
    acknowledge_case,
    assign_case,
    check_merge_allowed,
    create_playbook,
    dismiss_case,
    merge_customers,
    not_now,
    record_prompts_shown,
    reorder_playbooks,
    resolve_case,
    update_playbook,
)
from recovery.sidebar import customer_sidebar, till_scope


class CaseScopedMixin(TenantAPIMixin):
    queryset: Any = RecoveryCase.objects.all()

    def scope_queryset(self, queryset):
        return cases_at_locations(queryset, self.tenant)

    def get_case(self, pk: int):
        case = self.get_queryset().filter(pk=pk).select_related("organization").first()
        if case is None:
            raise NotFoundError("No such case.")
        return case

    @property
    def actor(self) -> Actor:
        tenant = self.tenant
        return Actor(user=tenant.user, api_key=tenant.api_key, location=tenant.default_location)

    def detail(self, case_id: int) -> Response:
        return Response(s.CaseDetailSerializer(case_detail(self.get_queryset(), case_id)).data)


class CasePageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = s.CaseSerializer(many=True)


class CaseListView(CaseScopedMixin, generics.GenericAPIView):
    # The filters are the queue's (recovery.filters); a bad one is a 400 naming it.
    filter_backends = [DjangoFilterBackend]
    filterset_class = CaseFilter
    schema = KeysetPageSchema()

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: CasePageSerializer},
        summary="Cases, most severe and oldest first",
        operation_id="cases_list",
    )
    @replica_reads()
    def get(self, request: Request) -> Response:
        qs = self.filter_queryset(self.get_queryset())
        limit = page_size_from(request)
        after = position_from(request, shape=QUEUE_POSITION)
        cases, following = case_queue(qs, after=after, limit=limit)
        return Response(
            {
                "next": next_link(request, following),
                "results": s.CaseSerializer(cases, many=True).data,
            }
        )


class CaseDetailView(CaseScopedMixin, APIView):
    @extend_schema(responses={200: s.CaseDetailSerializer})
    def get(self, request: Request, pk: int) -> Response:
        return self.detail(self.get_case(pk).pk)


class TillActionMixin(CaseScopedMixin):
    """Acknowledge, not now and resolve: what the till does with a prompt. A key or member
    limited to some locations may act on any prompt the sidebar shows it, wherever the case
    was opened (recovery.sidebar.till_cases); the answer is the case through the same scope,
    so it is not a 404 for them. Browsing (the list, GET /cases/{id}/) stays location-limited.
    """

    def scope_queryset(self, queryset):
        return till_scope(queryset, self.tenant)


CASE_NOT_OPEN = error_response("The case is not open (resolved or dismissed already).")

TILL_ACTION_NOTE = (
    " Any till of the organization may do this for a case its sidebar shows (an open case shown "
    "at visits), even one opened at another location; the answer is the case as that till "
    "sees it, although GET /cases/{id}/ stays limited to the key's locations."
)


class CaseAcknowledgeView(TillActionMixin, APIView):
    @extend_schema(
        request=None,
        responses={200: s.CaseDetailSerializer, 409: CASE_NOT_OPEN},
        summary="Acknowledge: someone is on it",
        description="Stops the acknowledgement clock." + TILL_ACTION_NOTE,
    )
    def post(self, request: Request, pk: int) -> Response:
        case = acknowledge_case(case=self.get_case(pk), actor=self.actor)
        return self.detail(case.pk)


class CaseAssignView(CaseScopedMixin, APIView):
    @extend_schema(
        request=s.AssignInputSerializer,
        responses={
            200: s.CaseDetailSerializer,
            404: error_response("No such case, or `assignee` is no member of this organization."),
            409: CASE_NOT_OPEN,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        case = self.get_case(pk)
        body = s.AssignInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        assignee = None
        if body.validated_data["assignee"] is not None:
            member = (
                self.tenant.memberships()
                .filter(user_id=body.validated_data["assignee"])
                .select_related("user")
                .first()
            )
            if member is None:
                raise NotFoundError("No such member of this organization.", field="assignee")
            assignee = member.user
        case = assign_case(case=case, assignee=assignee, actor=self.actor)
        return self.detail(case.pk)


class CaseResolveView(TillActionMixin, APIView):
    @extend_schema(
        request=s.ResolveInputSerializer,
        responses={200: s.CaseDetailSerializer, 409: CASE_NOT_OPEN},
        summary="Resolve: log the recovery episode (note, actions taken) and close the case",
        description=(
            "The recovery episode is logged at the caller's location (the key's, or the "
            "session's at the till), else at the case's. A case that is no longer open is a "
            "409." + TILL_ACTION_NOTE
        ),
    )
    def post(self, request: Request, pk: int) -> Response:
        case = self.get_case(pk)
        body = s.ResolveInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        case = resolve_case(
            case=case,
            note=body.validated_data.get("note", ""),
            action_ids=body.validated_data.get("actions", []),
            actor=self.actor,
        )
        return self.detail(case.pk)


class CaseDismissView(CaseScopedMixin, APIView):
    @extend_schema(
        request=s.DismissInputSerializer,
        responses={200: s.CaseDetailSerializer, 409: CASE_NOT_OPEN},
    )
    def post(self, request: Request, pk: int) -> Response:
        case = self.get_case(pk)
        body = s.DismissInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        case = dismiss_case(case=case, reason=body.validated_data["reason"], actor=self.actor)
        return self.detail(case.pk)


class ManagersWriteMixin(TenantAPIMixin):
    """Everyone in the organization reads playbooks; owners and managers change them."""

    def require_manager(self) -> None:
        if not self.tenant.is_manager_or_owner:
            raise PermissionDenied("Only owners and managers change playbooks.")


class PlaybookListView(ManagersWriteMixin, generics.ListAPIView):
    queryset = Playbook.objects.all()
    serializer_class = s.PlaybookSerializer
    pagination_class = None

    @extend_schema(request=s.PlaybookSerializer, responses={201: s.PlaybookSerializer})
    def post(self, request: Request) -> Response:
        self.require_manager()
        body = s.PlaybookSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        playbook = create_playbook(organization=self.tenant.organization, **body.validated_data)
        return Response(s.PlaybookSerializer(playbook).data, status=201)


class PlaybookDetailView(ManagersWriteMixin, generics.RetrieveAPIView):
    queryset = Playbook.objects.all()
    serializer_class = s.PlaybookSerializer
    http_method_names = ["get", "patch", "head", "options"]

    @extend_schema(request=s.PlaybookSerializer, responses={200: s.PlaybookSerializer})
    def patch(self, request: Request, pk: int) -> Response:
        playbook = self.get_object()
        self.require_manager()
        body = s.PlaybookSerializer(playbook, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        playbook = update_playbook(playbook=playbook, **body.validated_data)
        return Response(s.PlaybookSerializer(playbook).data)


class PlaybookOrderView(ManagersWriteMixin, APIView):
    @extend_schema(
        request=s.PlaybookOrderSerializer,
        responses={200: s.PlaybookSerializer(many=True)},
        summary="Set the matching order of the playbooks (the first match wins)",
    )
    def post(self, request: Request) -> Response:
        self.require_manager()
        body = s.PlaybookOrderSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        playbooks = reorder_playbooks(
            organization=self.tenant.organization, order=body.validated_data["order"]
        )
        return Response(s.PlaybookSerializer(playbooks, many=True).data)


class SidebarMixin(CaseScopedMixin):
    def sidebar_response(self, customer_id, location, status: int = 200) -> tuple[int, dict]:
        sidebar = customer_sidebar(tenant=self.tenant, customer_id=customer_id, location=location)
        if sidebar.customer is not None:
            record_read(
                tenant=self.tenant,
                action=ReadAction.SIDEBAR,
                customer_ids=[sidebar.customer.pk],
                request=self.request,
            )
        record_prompts_shown(
            cases=[p.case for p in sidebar.prompts],
            actor=Actor(user=self.tenant.user, api_key=self.tenant.api_key, location=location),
        )
        return status, s.SidebarSerializer(sidebar).data


class SidebarView(SidebarMixin, APIView):
    @extend_schema(
        parameters=[s.SidebarQuerySerializer],
        responses={
            200: s.SidebarSerializer,
            404: error_response(
                "No customer with the id in `customer`, or no location with that slug that this "
                "key or member may use."
            ),
        },
        summary="The till sidebar: the customer card, open prompts and the last 20 episodes",
        description="An unknown customer is a normal answer: `customer` is null.",
    )
    def get(self, request: Request) -> Response:
        query = s.SidebarQuerySerializer(data=lookup_data(request))
        query.is_valid(raise_exception=True)
        params = query.validated_data
        location = self.tenant.resolve_location(params.get("location"))
        if "customer" in params:
            customer_id = params["customer"]
        else:
            raw = {k: params[k] for k in ("phone", "email", "card", "pos_id") if k in params}
            customer_id = customer_id_for(organization=self.tenant.organization, identifiers=raw)
        status, body = self.sidebar_response(customer_id, location)
        if "customer" in params and body["customer"] is None:
            raise NotFoundError("No such customer.", field="customer")
        return Response(body, status=status)

    @extend_schema(
        request=s.SidebarQuerySerializer,
        responses={200: s.SidebarSerializer, 404: NO_SUCH_CUSTOMER_OR_LOCATION},
        summary="The till sidebar, for a customer named in the body",
        description="GET /sidebar/ with the parameters in a JSON body instead of the URL, so "
        "a phone number or an email is not in any URL (access logs redact those anyway).",
        operation_id="sidebar_lookup",
    )
    def post(self, request: Request) -> Response:
        return self.get(request)


class VisitView(SidebarMixin, APIView):
    @extend_schema(
        request=EpisodeInputSerializer,
        responses={
            201: s.SidebarSerializer,
            200: OpenApiResponse(s.SidebarSerializer, "A repeated external_id: the first visit's."),
            404: NO_SUCH_CUSTOMER_OR_LOCATION,
            409: CUSTOMER_ERASED_OR_KEY_IN_USE,
        },
        parameters=[IDEMPOTENCY_HEADER],
        summary="Check a customer in at the till: logs a visit and answers with the sidebar",
        description="The body is shaped like an episode's; `kind` is always visit.",
    )
    def post(self, request: Request) -> Response:
        idempotency_key_from(request)
        data = dict(request.data) if isinstance(request.data, dict) else request.data
        if isinstance(data, dict):
            data["kind"] = "visit"
            data.setdefault("source", "pos")
        serializer = EpisodeInputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        episode_input = serializer.to_input(tenant=self.tenant, default_source="pos")

        def action():
            result = record_episode(
                organization=self.tenant.organization,
                data=episode_input,
                author_user=self.tenant.user,
                author_api_key=self.tenant.api_key,
            )
            return self.sidebar_response(
                result.episode.customer_id, episode_input.location, 201 if result.created else 200
            )

        return respond(self, request, action)


class CaseNotNowView(TillActionMixin, APIView):
    @extend_schema(
        request=None,
        responses={200: s.CaseDetailSerializer, 409: CASE_NOT_OPEN},
        summary="Not now: staff could not act this time; the prompt shows again next visit",
        description="The case stays open." + TILL_ACTION_NOTE,
    )
    def post(self, request: Request, pk: int) -> Response:
        case = self.get_case(pk)
        not_now(case=case, actor=self.actor)
        return self.detail(case.pk)


class MergeInputSerializer(serializers.Serializer):
    duplicate = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text="The customer id to merge into this one."
    )


class CustomerMergeView(CaseScopedMixin, APIView):
    @extend_schema(
        request=MergeInputSerializer,
        responses={
            200: CustomerSerializer,
            403: error_response(
                "Not for staff or a location's key, or a case of either customer is at a "
                "location the actor cannot see."
            ),
            404: error_response("No such customer, or no customer `duplicate`, here."),
            409: error_response(
                "Either customer was erased (code `customer_erased`), or an import of the "
                "organization is running (code `import_running`: merge once it has finished)."
            ),
        },
        summary="Merge a duplicate into this customer: one person, one narrative",
        description="For owners, managers and organization-wide keys. The duplicate's open "
        "cases of a kind the customer already has open are dismissed, each with a history "
        "event.",
    )
    def post(self, request: Request, pk: int) -> Response:
        customers = Customer.objects.for_tenant(self.tenant)
        into = customers.filter(pk=pk).first()
        if into is None:
            raise NotFoundError("No such customer.")
        body = MergeInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        duplicate = customers.filter(pk=body.validated_data["duplicate"]).first()
        if duplicate is None:
            raise NotFoundError("No such customer.", field="duplicate")
        check_merge_allowed(tenant=self.tenant, into=into, duplicate=duplicate)
        merged = merge_customers(into=into, duplicate=duplicate, actor=self.actor)
        return Response(
            CustomerSerializer(
                customers_with_identifiers(self.tenant.organization).get(pk=merged.pk)
            ).data
        )


class InsightsSummaryView(TenantAPIMixin, APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, description="Default: 30 days ago."),
            OpenApiParameter("to", OpenApiTypes.DATE, description="Default: today."),
            OpenApiParameter("location", OpenApiTypes.STR),
        ],
        responses={
            200: OpenApiTypes.OBJECT,
            404: error_response("No location with that slug that this key or member may use."),
        },
        summary="Negative experiences, SLAs, recovery rate and the lift recovery brings",
    )
    @replica_reads()
    def get(self, request: Request) -> Response:
        if self.tenant.api_key is None and not self.tenant.is_manager_or_owner:
            raise PermissionDenied("Insights are for owners and managers.")
        query = s.InsightsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        location = (
            self.tenant.resolve_location(params.get("location")) if params.get("location") else None
        )
        result = insights_summary(
            tenant=self.tenant, start=params["start"], end=params["end"], location=location
        )
        return Response(s.insights_json(result))

"""REST API v1: parse → scope and authorize → call a service or selector → serialize."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.errors import DomainError, InvalidFields
from accounts.models import Location
from accounts.tenancy import TenantAPIMixin
from cxcore.api import serializers as s
from cxcore.api.errors import domain_error_json, flatten_errors
from cxcore.api.idempotency import IDEMPOTENCY_HEADER, idempotency_key_from, respond
from cxcore.api.lookup import lookup_data
from cxcore.api.pagination import PAGE_PARAMETERS, next_link, page_size_from, position_from
from cxcore.api.schema import (
    CUSTOMER_ERASED,
    CUSTOMER_ERASED_OR_KEY_IN_USE,
    NO_SUCH_CUSTOMER_OR_LOCATION,
    results_list,
)
from cxcore.audit import record_read
from cxcore.models import Customer, Episode, ReadAction, Source
from cxcore.selectors import (
    TIMELINE_POSITION,
    customer_timeline,
    search_customers,
    with_identifiers,
)
from cxcore.services import (
    EpisodeInput,
    correct_experience,
    record_episode,
    record_episodes_bulk,
    update_customer,
)


def default_source(view: TenantAPIMixin) -> str:
    """Episodes an API key logs come from the API; those a member logs, from staff."""
    return Source.API if view.tenant.api_key is not None else Source.STAFF


class EpisodeCreateView(TenantAPIMixin, APIView):
    @extend_schema(
        request=s.EpisodeInputSerializer,
        responses={
            201: s.EpisodeSerializer,
            200: OpenApiResponse(s.EpisodeSerializer, "A repeated external_id: the first episode."),
            404: NO_SUCH_CUSTOMER_OR_LOCATION,
            409: CUSTOMER_ERASED_OR_KEY_IN_USE,
        },
        parameters=[IDEMPOTENCY_HEADER],
        summary="Log an episode in a customer's narrative",
    )
    def post(self, request: Request) -> Response:
        idempotency_key_from(request)  # a malformed key is refused before anything else
        serializer = s.EpisodeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.to_input(tenant=self.tenant, default_source=default_source(self))

        def action() -> tuple[int, Any]:
            result = record_episode(
                organization=self.tenant.organization,
                data=data,
                author_user=self.tenant.user,
                author_api_key=self.tenant.api_key,
            )
            body = s.EpisodeSerializer(result.episode).data
            return (201 if result.created else 200), body

        return respond(self, request, action)


class EpisodeBulkView(TenantAPIMixin, APIView):
    @extend_schema(
        request=s.BulkEpisodesInputSerializer,
        responses={200: s.BulkResultSerializer},
        parameters=[IDEMPOTENCY_HEADER],
        summary="Log up to 1,000 episodes; each gets its own result",
        description=(
            "Each item has the shape of POST /episodes/. A bad item is reported in its result "
            "and does not stop the others."
        ),
    )
    def post(self, request: Request) -> Response:
        idempotency_key_from(request)
        envelope = s.BulkEpisodesInputSerializer(data=request.data)
        envelope.is_valid(raise_exception=True)
        items: list[EpisodeInput | DomainError] = []
        locations: dict[str | None, Any] = {}  # one lookup per distinct slug, not per item
        # One serializer validates every item, as ListSerializer's child does: a new one per
        # item deep-copied its fields a thousand times and was most of a batch's cost.
        checker = s.EpisodeInputSerializer()
        for raw in envelope.validated_data["episodes"]:
            try:
                data = checker.run_validation(raw)
            except serializers.ValidationError as exc:
                items.append(item_errors(exc.detail))
                continue
            try:
                items.append(
                    checker.input_from(
                        data,
                        tenant=self.tenant,
                        default_source=default_source(self),
                        location_cache=locations,
                    )
                )
            except DomainError as exc:
                items.append(exc)

        def action() -> tuple[int, Any]:
            results = record_episodes_bulk(
                organization=self.tenant.organization,
                items=items,
                author_user=self.tenant.user,
                author_api_key=self.tenant.api_key,
            )
            out = []
            episode_out = s.EpisodeSerializer()
            for index, result in enumerate(results):
                entry: dict[str, Any] = {"index": index, "status": result.status}
                if result.episode is not None:
                    entry["episode"] = episode_out.to_representation(result.episode)
                if result.error is not None:
                    entry["errors"] = domain_error_json(result.error)
                out.append(entry)
            counts = {k: sum(r.status == k for r in results) for k in ("created", "duplicate")}
            body = {
                "created": counts["created"],
                "duplicates": counts["duplicate"],
                "failed": len(results) - counts["created"] - counts["duplicate"],
                "results": out,
            }
            return 200, body

        return respond(self, request, action)


def item_errors(errors: list[Any] | dict[str, Any]) -> DomainError:
    flat = flatten_errors(serializers.ValidationError(errors).detail)
    return InvalidFields(flat)


class EpisodeDetailView(TenantAPIMixin, generics.RetrieveAPIView):
    queryset = Episode.objects.select_related("location")
    serializer_class = s.EpisodeSerializer

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        episode = self.get_object()
        # One episode of the narrative: a read of the timeline.
        record_read(
            tenant=self.tenant,
            action=ReadAction.TIMELINE,
            customer_ids=[episode.customer_id],
            request=request,
        )
        return Response(self.get_serializer(episode).data)


class EpisodeExperienceView(TenantAPIMixin, APIView):
    queryset = Episode.objects.select_related("location")

    @extend_schema(
        request=s.ExperienceCorrectionInputSerializer,
        responses={200: s.EpisodeSerializer, 409: CUSTOMER_ERASED},
        summary="Correct an episode's experience (the correction is recorded)",
    )
    def post(self, request: Request, pk: int) -> Response:
        episode = generics.get_object_or_404(self.get_queryset(), pk=pk)
        if episode.location is not None and not self.tenant.can_use_location(episode.location):
            raise PermissionDenied(f"This key or account cannot act at {episode.location.name}.")
        serializer = s.ExperienceCorrectionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        episode = correct_experience(
            episode=episode,
            experience=serializer.validated_data["experience"],
            reason=serializer.validated_data.get("reason", ""),
            by_user=self.tenant.user,
            by_api_key=self.tenant.api_key,
        )
        return Response(s.EpisodeSerializer(episode).data)


# For the schema: what GET /customers/ and POST /customers/lookup/ both answer.
CUSTOMER_LIST = results_list("CustomerList", s.CustomerSerializer(many=True))


class CustomerListView(TenantAPIMixin, APIView):
    @extend_schema(
        parameters=[s.CustomerQuerySerializer],
        responses={200: CUSTOMER_LIST},
        operation_id="customers_list",
        summary="Find customers by identifier (phone, email, card, pos_id) or by name (q)",
    )
    def get(self, request: Request) -> Response:
        query = s.CustomerQuerySerializer(data=lookup_data(request))
        query.is_valid(raise_exception=True)
        params = dict(query.validated_data)
        q = params.pop("q", "")
        customers = list(
            search_customers(organization=self.tenant.organization, identifiers=params, q=q)
        )
        record_read(
            tenant=self.tenant,
            action=ReadAction.SEARCH,
            customer_ids=[c.pk for c in customers],
            request=request,
        )
        return Response({"results": s.CustomerSerializer(customers, many=True).data})


class CustomerLookupView(CustomerListView):
    http_method_names = ["post", "options"]

    @extend_schema(
        request=s.CustomerQuerySerializer,
        responses={200: CUSTOMER_LIST},
        summary="Find customers by identifier or name sent in the body",
        description="GET /customers/ with the parameters in a JSON body instead of the URL, "
        "so a phone number or an email is not in any URL (access logs redact those anyway).",
    )
    def post(self, request: Request) -> Response:
        return self.get(request)


class CustomerDetailView(TenantAPIMixin, generics.RetrieveAPIView):
    queryset = Customer.objects.all()
    serializer_class = s.CustomerSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def scope_queryset(self, queryset):
        return with_identifiers(queryset)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        customer = self.get_object()
        record_read(
            tenant=self.tenant,
            action=ReadAction.DETAIL,
            customer_ids=[customer.pk],
            request=request,
        )
        return Response(self.get_serializer(customer).data)

    @extend_schema(
        request=s.CustomerUpdateSerializer,
        responses={200: s.CustomerSerializer, 409: CUSTOMER_ERASED},
    )
    def patch(self, request: Request, pk: int) -> Response:
        customer = self.get_object()
        serializer = s.CustomerUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        update_customer(
            customer=customer,
            by_user=self.tenant.user,
            by_api_key=self.tenant.api_key,
            **serializer.validated_data,
        )
        return Response(s.CustomerSerializer(self.get_object()).data)


class TimelinePageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = s.EpisodeSerializer(many=True)


class CustomerTimelineView(TenantAPIMixin, APIView):
    queryset = Customer.objects.all()

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: TimelinePageSerializer},
        summary="The customer's narrative, newest first",
    )
    def get(self, request: Request, pk: int) -> Response:
        customer = generics.get_object_or_404(self.get_queryset(), pk=pk)
        limit = page_size_from(request)
        before = position_from(request, shape=TIMELINE_POSITION)
        episodes, following = customer_timeline(customer=customer, before=before, limit=limit)
        record_read(
            tenant=self.tenant,
            action=ReadAction.TIMELINE,
            customer_ids=[customer.pk],
            request=request,
        )
        return Response(
            {
                "next": next_link(request, following),
                "results": s.EpisodeSerializer(episodes, many=True).data,
            }
        )


class LocationListView(TenantAPIMixin, APIView):
    @extend_schema(
        responses={200: results_list("LocationList", s.LocationSerializer(many=True))},
        operation_id="locations_list",
    )
    def get(self, request: Request) -> Response:
        locations: list[Location] = list(self.tenant.locations())
        return Response({"results": s.LocationSerializer(locations, many=True).data})

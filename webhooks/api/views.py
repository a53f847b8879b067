"""The webhooks API: endpoints, their deliveries, and the event list.

Endpoints are the organization's wiring, so owners and organization-wide keys manage them; a
key limited to a location, a manager or staff gets 403 (the role is checked before any lookup,
so the 403 says nothing about which endpoints exist). Another organization's endpoint or
delivery is not in the scoped queryset: 404.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.errors import InvalidInput
from accounts.tenancy import IsTenantMember, TenantAPIMixin
from cxcore.api import privacy
from cxcore.api.pagination import PAGE_PARAMETERS, next_link, page_size_from, position_from
from cxcore.api.schema import error_response
from cxcore.keyset import MAX_CURSOR_LENGTH, encode_cursor
from webhooks import selectors, services
from webhooks.api import serializers as s
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

PAGE_SIZE_PARAMETER = PAGE_PARAMETERS[1]  # ?page_size=, 1–100
ENDPOINT_DISABLED = error_response("The endpoint is disabled: turn it back on first.")


class IsOwnerOrOrgWideKey(privacy.IsOwnerOrOrgWideKey):
    message = "Webhooks are managed by owners and organization-wide API keys."


PERMISSIONS = [IsTenantMember, IsOwnerOrOrgWideKey]


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise InvalidInput("A JSON object is expected.", field="body")
    return dict(request.data)


class EndpointListView(TenantAPIMixin, APIView):
    queryset = WebhookEndpoint.objects.all()
    permission_classes = PERMISSIONS

    @extend_schema(responses={200: s.EndpointSerializer(many=True)}, summary="Your endpoints")
    def get(self, request: Request) -> Response:
        return Response(s.EndpointSerializer(self.get_queryset(), many=True).data)

    @extend_schema(
        request=s.EndpointInputSerializer,
        responses={201: s.EndpointWithSecretSerializer},
        summary="Add an endpoint (its secret is in this answer only)",
    )
    def post(self, request: Request) -> Response:
        endpoint, secret = services.create_endpoint_from(
            organization=self.tenant.organization, fields=_body(request)
        )
        data = s.EndpointWithSecretSerializer(endpoint, context={"secret": secret}).data
        response = Response(data, status=201)
        response["Cache-Control"] = "no-store"
        return response


class _OneEndpoint(TenantAPIMixin, APIView):
    queryset = WebhookEndpoint.objects.all()
    permission_classes = PERMISSIONS

    def _endpoint(self, pk: int) -> WebhookEndpoint:
        return generics.get_object_or_404(self.get_queryset(), pk=pk)


class EndpointDetailView(_OneEndpoint):
    @extend_schema(responses={200: s.EndpointSerializer})
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.EndpointSerializer(self._endpoint(pk)).data)

    @extend_schema(request=s.EndpointPatchSerializer, responses={200: s.EndpointSerializer})
    def patch(self, request: Request, pk: int) -> Response:
        endpoint = self._endpoint(pk)
        updated = services.update_endpoint(endpoint=endpoint, fields=_body(request))
        return Response(s.EndpointSerializer(updated).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        services.delete_endpoint(endpoint=self._endpoint(pk))
        return Response(status=204)


class EndpointTestView(_OneEndpoint):
    @extend_schema(
        request=None,
        responses={202: s.DeliverySerializer, 409: ENDPOINT_DISABLED},
        summary="Send a test",
    )
    def post(self, request: Request, pk: int) -> Response:
        delivery = services.send_test(endpoint=self._endpoint(pk))
        return Response(s.DeliverySerializer(delivery).data, status=202)


class EndpointRotateSecretView(_OneEndpoint):
    @extend_schema(
        request=None,
        responses={200: s.RotatedSecretSerializer},
        summary="A new secret; the old one also signs for 24 hours",
    )
    def post(self, request: Request, pk: int) -> Response:
        endpoint = self._endpoint(pk)
        secret = services.rotate_secret(endpoint=endpoint)
        response = Response(
            {"secret": secret, "previous_secret_until": endpoint.previous_secret_until}
        )
        response["Cache-Control"] = "no-store"
        return response


class EndpointDeliveriesView(_OneEndpoint):
    @extend_schema(
        parameters=[
            OpenApiParameter("cursor", OpenApiTypes.STR, description="From the previous `next`."),
            PAGE_SIZE_PARAMETER,
        ],
        responses={200: s.DeliveryPageSerializer},
        summary="The endpoint's deliveries, newest first, each with its attempts",
    )
    def get(self, request: Request, pk: int) -> Response:
        endpoint = self._endpoint(pk)
        rows, following = selectors.deliveries_page(
            endpoint=endpoint,
            after=position_from(request, shape=(int,)),
            limit=page_size_from(request),
        )
        return Response(
            {
                "next": next_link(request, following),
                "results": s.DeliverySerializer(rows, many=True).data,
            }
        )


class DeliveryReplayView(TenantAPIMixin, APIView):
    queryset = WebhookDelivery.objects.all()
    permission_classes = PERMISSIONS

    @extend_schema(
        request=None,
        responses={202: s.DeliverySerializer, 409: ENDPOINT_DISABLED},
        summary="Send a delivery's event again (same webhook-id)",
    )
    def post(self, request: Request, pk: int) -> Response:
        delivery = generics.get_object_or_404(self.get_queryset().select_related("endpoint"), pk=pk)
        again = services.replay_delivery(delivery=delivery)
        again = WebhookDelivery.objects.select_related("event").get(pk=again.pk)
        return Response(s.DeliverySerializer(again).data, status=202)


class EventListView(TenantAPIMixin, APIView):
    """Every event of the last 30 days in commit order, for a consumer that polls or was down.

    Any member or key of the organization may read it: it holds ids, severities and
    headlines, what the till shows anyway (no contact details)."""

    queryset = WebhookEvent.objects.all()

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "after",
                {"type": "string", "format": "cursor", "maxLength": MAX_CURSOR_LENGTH},
                description="The `after` of the previous page; opaque.",
            ),
            PAGE_SIZE_PARAMETER,
        ],
        responses={200: s.EventPageSerializer},
        summary="Events in order, kept 30 days",
    )
    def get(self, request: Request) -> Response:
        after = position_from(request, shape=(int, int), param="after")
        limit = page_size_from(request)
        events, position = selectors.events_page(
            organization=self.tenant.organization, after=after, limit=limit, now=timezone.now()
        )
        # A full page may have more behind it; a short one is where a poller waits.
        following = position if len(events) == limit else None
        return Response(
            {
                "after": encode_cursor(*position) if position is not None else None,
                "next": next_link(request, following, param="after"),
                "results": s.EventSerializer(events, many=True).data,
            }
        )

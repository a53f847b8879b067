"""Connectors over the API: parse → scope and authorize → call a service → serialize."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.errors import InvalidInput, NotFoundError
from accounts.models import Location
from accounts.tenancy import Tenant, TenantAPIMixin
from connectors import square
from connectors.api import serializers as s
from connectors.checks import RecordedCheck, record_check
from connectors.models import SquareConnection
from connectors.reasons import entries_to_json, validate_entries
from connectors.services import (
    connect_square,
    handle_notification,
    notification_url,
    reason_entries,
    revoke_square,
    set_reason_map,
)
from cxcore.api.errors import ErrorBodySchemaSerializer, error_body
from cxcore.api.idempotency import IDEMPOTENCY_HEADER, idempotency_key_from, respond
from cxcore.api.schema import error_response
from cxcore.api.serializers import DATETIME_OUT


def require_org_admin(tenant: Tenant) -> None:
    """Connections and the reason map are the organization's settings: owners, and API keys
    for the whole organization (a till's key is for its till)."""
    if tenant.is_org_admin:
        return
    if tenant.api_key is not None:
        raise exceptions.PermissionDenied("A key limited to a location cannot do this.")
    raise exceptions.PermissionDenied("Only owners can change this.")


def connection_json(connection: SquareConnection) -> dict[str, Any]:
    slugs = dict(
        Location.objects.filter(organization_id=connection.organization_id).values_list(
            "pk", "slug"
        )
    )
    return {
        "notification_url": notification_url(connection),
        "locations": {
            square_id: slugs.get(pk, "") for square_id, pk in sorted(connection.locations.items())
        },
        "created_at": DATETIME_OUT.to_representation(connection.created_at),
        "updated_at": DATETIME_OUT.to_representation(connection.updated_at),
        "events": sorted(square.USED_EVENTS),
    }


class SquareConnectionView(TenantAPIMixin, APIView):
    queryset = SquareConnection.objects.all()

    def _current(self) -> SquareConnection:
        connection = self.get_queryset().filter(revoked_at__isnull=True).first()
        if connection is None:
            raise NotFoundError("Square is not connected.", code="not_connected")
        return connection

    @extend_schema(
        responses={
            200: s.SquareConnectionSerializer,
            404: error_response("Square is not connected."),
        },
        summary="The Square connection, if any",
        operation_id="square_connection_retrieve",
    )
    def get(self, request: Request) -> Response:
        require_org_admin(self.tenant)
        return Response(connection_json(self._current()))

    @extend_schema(
        request=s.SquareConnectInputSerializer,
        responses={
            201: s.SquareConnectionSerializer,
            200: OpenApiResponse(s.SquareConnectionSerializer, "Updated the key or locations."),
            404: error_response("A location slug we do not have."),
        },
        summary="Connect Square: the notification URL to register in Square's dashboard",
        operation_id="square_connection_create",
    )
    def post(self, request: Request) -> Response:
        require_org_admin(self.tenant)
        serializer = s.SquareConnectInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        connection, created = connect_square(
            organization=self.tenant.organization,
            signature_key=serializer.validated_data["signature_key"],
            locations=serializer.validated_data.get("locations", {}),
            by_user=self.tenant.user,
        )
        return Response(connection_json(connection), status=201 if created else 200)

    @extend_schema(
        responses={
            204: None,
            404: error_response("Square is not connected."),
        },
        summary="Disconnect Square (its URL answers 410)",
        operation_id="square_connection_destroy",
    )
    def delete(self, request: Request) -> Response:
        require_org_admin(self.tenant)
        self._current()
        revoke_square(organization=self.tenant.organization)
        return Response(status=204)


class SquareNotificationView(APIView):
    """Square's notifications, as Square sends them. No API key: the token in the URL names
    the connection, and the signature over the URL and raw body is the credential."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes: list = []

    @extend_schema(
        request={"application/json": {"type": "object"}},
        responses={
            200: s.SquareNotificationResultSerializer,
            401: ErrorBodySchemaSerializer,
            410: ErrorBodySchemaSerializer,
        },
        summary="Square webhook notifications (signed by Square)",
        operation_id="square_notification_create",
        auth=[],
    )
    def post(self, request: Request, token: str) -> Response:
        connection = (
            SquareConnection.objects.select_related("organization").filter(token=token).first()
        )
        if connection is None:
            raise NotFoundError("No such connection.")
        if not connection.is_active:
            return Response(
                error_body(
                    410, [{"field": None, "code": "gone", "message": "Square was disconnected."}]
                ),
                status=410,
            )
        body = request.body  # the raw bytes Square signed, read before anything parses them
        if not square.is_signed(
            body=body,
            header=request.headers.get(square.SIGNATURE_HEADER),
            notification_url=notification_url(connection),
            key=connection.signature_key,
        ):
            raise exceptions.AuthenticationFailed(
                f"Missing or wrong {square.SIGNATURE_HEADER}.", code="bad_signature"
            )
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("The body is not JSON.", field="body", code="parse_error") from None
        notification = square.parse_notification(payload)
        outcome = handle_notification(connection=connection, notification=notification)
        return Response({"outcome": outcome})

    def get_authenticate_header(self, request: Request) -> str:
        # A 401 without WWW-Authenticate would be turned into a 403 by DRF.
        return "Square-Signature"


def check_json(recorded: RecordedCheck) -> dict[str, Any]:
    return s.CheckSerializer(
        {
            "id": recorded.check.pk,
            "external_id": recorded.check.external_id,
            "order": recorded.order,
            "incidents": recorded.incidents,
        }
    ).data


class CheckCreateView(TenantAPIMixin, APIView):
    @extend_schema(
        request=s.CheckInputSerializer,
        responses={
            201: s.CheckSerializer,
            200: OpenApiResponse(s.CheckSerializer, "A repeated external_id: the first result."),
            404: error_response("No such location or customer here."),
            409: error_response("The external_id names another check."),
        },
        parameters=[IDEMPOTENCY_HEADER],
        summary="Log a check: an order, and an incident per comped, voided or remade line",
    )
    def post(self, request: Request) -> Response:
        idempotency_key_from(request)
        serializer = s.CheckInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.to_input(tenant=self.tenant)

        def action() -> tuple[int, Any]:
            recorded = record_check(
                organization=self.tenant.organization,
                data=data,
                author_user=self.tenant.user,
                author_api_key=self.tenant.api_key,
            )
            return (201 if recorded.created else 200), check_json(recorded)

        return respond(self, request, action)


class ReasonMapView(TenantAPIMixin, APIView):
    @extend_schema(responses={200: s.ReasonMapSchemaSerializer}, summary="The reason map")
    def get(self, request: Request) -> Response:
        entries = reason_entries(organization=self.tenant.organization)
        return Response({"entries": entries_to_json(entries)})

    @extend_schema(
        request=s.ReasonMapSchemaSerializer,
        responses={200: s.ReasonMapSchemaSerializer},
        summary="Replace the reason map (owners and organization-wide keys)",
    )
    def put(self, request: Request) -> Response:
        require_org_admin(self.tenant)
        if not isinstance(request.data, dict):
            raise InvalidInput('Give {"entries": [...]}.', field="entries")
        entries = validate_entries(request.data.get("entries"))
        set_reason_map(organization=self.tenant.organization, entries=entries)
        return Response({"entries": entries_to_json(entries)})

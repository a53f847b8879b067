"""One exception handler: every API error is JSON that names the field and a stable code.

{"error": "validation_error", "message": "customer.phone: …",
 "errors": [{"field": "customer.phone", "code": "invalid_phone", "message": "…"}]}
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.errors import DomainError, InvalidFields

ERROR_NAMES = {
    400: "validation_error",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "throttled",
    503: "unavailable",
}
# A lost database is the server's trouble, not the client's: retry shortly.
UNAVAILABLE_RETRY_AFTER = 5


def clean_text(value: Any) -> Any:
    """Messages may echo the client's input; a lone surrogate in it cannot be encoded as UTF-8
    (nor stored in PostgreSQL), so replace it rather than fail while reporting the error."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\\x00")
    return value


def error_body(status_code: int, errors: list[dict[str, Any]]) -> dict[str, Any]:
    errors = [{key: clean_text(value) for key, value in error.items()} for error in errors]
    first = errors[0] if errors else {"message": "Error."}
    prefix = f"{first['field']}: " if first.get("field") else ""
    return {
        "error": ERROR_NAMES.get(status_code, "error"),
        "message": prefix + str(first["message"]),
        "errors": errors,
    }


class ErrorItemSchemaSerializer(serializers.Serializer):
    """For the schema only: one member of `errors` in `error_body`."""

    field = serializers.CharField(allow_null=True)
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorBodySchemaSerializer(serializers.Serializer):
    """For the schema only: what `error_body` answers."""

    error = serializers.CharField()
    message = serializers.CharField()

    def get_fields(self) -> dict[str, serializers.Field]:
        # Declared here: as a class attribute, `errors` would shadow Serializer.errors.
        return {**super().get_fields(), "errors": ErrorItemSchemaSerializer(many=True)}


def flatten_errors(detail: Any, path: str = "") -> list[dict[str, Any]]:
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            if isinstance(key, int):  # ListField reports its members by position
                out += flatten_errors(value, f"{path}[{key}]")
                continue
            name = "" if key == "non_field_errors" else clean_text(str(key))
            out += flatten_errors(value, f"{path}.{name}" if path and name else (name or path))
        return out
    if isinstance(detail, list):
        if detail and all(isinstance(item, exceptions.ErrorDetail) for item in detail):
            return [
                {"field": path or None, "code": item.code, "message": str(item)} for item in detail
            ]
        out = []
        for index, value in enumerate(detail):
            if value:  # DRF puts {} for the valid members of a list
                out += flatten_errors(value, f"{path}[{index}]")
        return out
    return [
        {"field": path or None, "code": getattr(detail, "code", "invalid"), "message": str(detail)}
    ]


def domain_error_json(exc: DomainError) -> list[dict[str, Any]]:
    errors = (
        exc.errors
        if isinstance(exc, InvalidFields)
        else [{"field": exc.field, "code": exc.code, "message": exc.message}]
    )
    return [{key: clean_text(value) for key, value in error.items()} for error in errors]


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(error_body(exc.status_code, domain_error_json(exc)), exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        body = error_body(413, [{"field": None, "code": "too_large", "message": str(exc)}])
        return Response(body, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, exceptions.ParseError):
        errors: list[dict[str, Any]] = [
            {"field": "body", "code": "parse_error", "message": str(exc.detail)}
        ]
        return Response(error_body(400, errors), 400)
    if isinstance(exc, OperationalError | InterfaceError):
        body = error_body(
            503,
            [{"field": None, "code": "database_unavailable",
              "message": "The database is unavailable; retry shortly."}],
        )  # fmt: skip
        unavailable = Response(body, status.HTTP_503_SERVICE_UNAVAILABLE)
        unavailable["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
        return unavailable
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        errors = [{"field": None, "code": getattr(detail, "code", "error"), "message": str(detail)}]
    response.data = error_body(response.status_code, errors)
    return response


def api_or_page(page_handler: Any, status_code: int, code: str, message: str) -> Any:
    """A project-level error handler (handler404, handler500) that answers JSON in the API's
    error shape under /api/ and the usual page everywhere else."""

    def handler(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.path.startswith("/api/"):
            body = error_body(status_code, [{"field": None, "code": code, "message": message}])
            return JsonResponse(body, status=status_code)
        return page_handler(request, *args, **kwargs)

    return handler

"""Idempotent writes over HTTP: the `Idempotency-Key` header, whose keys they are, and the
response (first run or replay). The record keeping itself is `cxcore.services.idempotency`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.errors import InvalidInput
from accounts.tenancy import TenantAPIMixin
from cxcore.services import request_fingerprint, run_idempotent

# What idempotency_key_from accepts, as the schema says it: printable ASCII, and no space at
# either end (HTTP drops those, so " " would arrive empty).
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$"
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY_PATTERN},
    OpenApiParameter.HEADER,
    description=(
        "Any unique string of up to 255 printable ASCII characters. A retry with the same key "
        "and body replays the first response (with `Idempotent-Replayed: true`); the same key "
        "with another body is refused with 422, and while the first request with a key is "
        "still running, a second is refused with 409."
    ),
)


def idempotency_key_from(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise InvalidInput(
            "Up to 255 printable ASCII characters.", field="Idempotency-Key", code="invalid"
        )
    return key


def idempotency_scope(view: TenantAPIMixin) -> str:
    """Keys are per API key, or per user for a session: two clients never share one."""
    tenant = view.tenant
    if tenant.api_key is not None:
        return f"key:{tenant.api_key.pk}"
    assert tenant.user is not None  # a tenant is an API key or a member
    return f"user:{tenant.user.pk}"


def respond(
    view: TenantAPIMixin, request: Request, action: Callable[[], tuple[int, Any]]
) -> Response:
    """Run a write once per Idempotency-Key (if the client sent one) and answer with its result."""
    key = idempotency_key_from(request)
    if key is None:
        status, body = action()
        return Response(body, status=status)
    outcome = run_idempotent(
        scope=idempotency_scope(view),
        key=key,
        fingerprint=request_fingerprint("POST", request.path, request.data),
        action=action,
    )
    response = Response(outcome.body, status=outcome.status)
    if outcome.replayed:
        response["Idempotent-Replayed"] = "true"
    return response

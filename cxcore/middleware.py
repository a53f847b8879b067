import re
import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase

from cxcore.api.errors import error_body
from cxcore.api.throttling import add_ratelimit_headers
from cxcore.db_router import PIN_COOKIE, Unit, replica_aliases, unit_of_work, within_unit


class HealthCheckMiddleware:
    """`/healthz` for load balancers and container health checks: answered first, before host
    validation and HTTPS redirects, which a probe by IP address would not pass."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return JsonResponse({"status": "ok"})
        return self.get_response(request)


REQUEST_ID_HEADER = "X-Request-ID"
# What an incoming id may look like: a proxy's or a POS's uuid or token, short and plain, so
# it can go into the read audit and the logs as it is (no spaces, no markup, no newlines).
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,63}")


class RequestIdMiddleware:
    """Every request has an id: the caller's `X-Request-ID` when it is well-formed (a proxy or
    POS that sets one can follow its request through), else a new uuid4. It is on the request
    as `request.request_id` (the read audit records it) and echoed in the response header."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if REQUEST_ID_PATTERN.fullmatch(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


class ApiBodyLimitMiddleware:
    """Refuse API bodies above API_MAX_BODY_BYTES with 413 before anything reads them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.API_MAX_BODY_BYTES:
                message = f"Request bodies are limited to {settings.API_MAX_BODY_BYTES} bytes."
                body = error_body(413, [{"field": None, "code": "too_large", "message": message}])
                return JsonResponse(body, status=413)
        return self.get_response(request)


class RateLimitHeadersMiddleware:
    """The API throttles' `RateLimit-Policy` and `RateLimit` fields, on whatever the view
    answered (cxcore.api.throttling records the quotas on the request)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        add_ratelimit_headers(request, response)
        return response


class ReplicaUnitMiddleware:
    """Each request is one unit of work for the read replicas (cxcore.db_router): it starts
    reading from any replica unless its browser is pinned to the primary, and once it writes it
    reads from the primary. A request that posted pins its browser for REPLICA_PIN_SECONDS, so
    the page its redirect shows reads the primary too. Without replicas it does nothing."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not replica_aliases():
            return self.get_response(request)
        unit = Unit(primary=PIN_COOKIE in request.COOKIES)
        with unit_of_work(unit):
            response = self.get_response(request)
        if response.streaming and not response.is_async:
            # Streamed after this returns (the queue's CSV, an export): still this request.
            response.streaming_content = within_unit(unit, response.streaming_content)
        if request.method not in ("GET", "HEAD", "OPTIONS", "TRACE"):
            response.set_cookie(
                PIN_COOKIE,
                "1",
                max_age=settings.REPLICA_PIN_SECONDS,
                httponly=True,
                secure=settings.SESSION_COOKIE_SECURE,
                samesite=settings.SESSION_COOKIE_SAMESITE,
            )
        return response

import re
import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from cxcore.api.errors import error_body
from cxcore.api.throttling import add_ratelimit_headers


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

"""The security headers every answer carries: Content-Security-Policy (django-csp, configured by
CONTENT_SECURITY_POLICY), Permissions-Policy (PERMISSIONS_POLICY) and the no-store rule.

Both middlewares sit outermost in MIDDLEWARE, so whatever answers a request (a view, an error
handler, /healthz, WhiteNoise's static files, a refused body) goes out through them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from csp.constants import SELF
from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with the nonce made for every answer rather than only for the
    ones whose template asked for it: every answer then carries the same policy, and a page
    that forgot its nonce fails visibly (its script is refused) rather than quietly getting a
    different policy. The cost is 16 random bytes a request."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        str(request.csp_nonce)  # type: ignore[attr-defined]  # makes it (set by process_request)
        return super().get_policy_parts(request, response, report_only)


def allow_framing(response: HttpResponseBase, origins: Iterable[str]) -> None:
    """Let our own pages and `origins` embed this answer in a frame: frame-ancestors replaced
    for this answer alone through django-csp (the attribute its @csp_replace decorator sets,
    which the middleware merges into the policy), and no X-Frame-Options (which has no way
    to name an origin). The caller validates `origins`."""
    setattr(response, "_csp_replace", {"frame-ancestors": [SELF, *origins]})  # noqa: B010
    response.xframe_options_exempt = True  # type: ignore[attr-defined]  # Django's own flag


def permissions_policy_header(policy: Mapping[str, Iterable[str]]) -> str:
    """`{"camera": ()}` → `camera=()`: the structured-field syntax of Permissions-Policy."""
    return ", ".join(f"{feature}=({' '.join(allow)})" for feature, allow in policy.items())


class SecurityHeadersMiddleware:
    """Permissions-Policy on every answer, and `Cache-Control: no-store` on every answer that
    did not choose its own caching.

    The no-store rule: anything a view answers may show a customer or a member (pages, the
    API, CSV exports, error pages, redirects that carry a query), and answers for signed-in
    users differ per user, so nothing a view answers may be kept by the browser or a proxy,
    unless the view set Cache-Control itself (the admin's and the login page's never_cache
    say no-store too). Static files keep WhiteNoise's caching: they hold no personal data, and
    WhiteNoise always sets its own Cache-Control."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.permissions_policy = permissions_policy_header(settings.PERMISSIONS_POLICY)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", self.permissions_policy)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

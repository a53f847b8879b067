"""The security headers every answer carries: Content-Security-Policy (django-csp, configured by
CONTENT_SECURITY_POLICY), Permissions-Policy (PERMISSIONS_POLICY) and the no-store rule.

Both middlewares sit outermost in MIDDLEWARE, so whatever answers a request (a view, an error
handler, /healthz, WhiteNoise's static files, a refused body) goes out through them."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from csp.constants import HEADER, SELF
from csp.middleware import CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.http.response import HttpResponseBase

# Stands in for the nonce in the cached text of the policy; each answer puts its own there.
NONCE_SLOT = "'nonce-__slot__'"
# What a response may carry for django-csp beside a replacement (see allow_framing); with any
# of them, or with a report-only policy or excluded prefixes configured, django-csp's own
# process_response runs instead of the cached text.
OTHER_OVERRIDES = (
    *("_csp_config", "_csp_update"),
    *("_csp_config_ro", "_csp_update_ro", "_csp_replace_ro", "_csp_exempt_ro"),
)

Replacement = tuple[tuple[str, tuple[str, ...]], ...]


@functools.lru_cache(maxsize=256)
def policy_text(replace: Replacement = ()) -> str:
    """django-csp's own rendering of CONTENT_SECURITY_POLICY (with `replace`'s directives
    replaced), with NONCE_SLOT for the nonce. Built once per distinct replacement rather than
    per answer: django-csp copies every directive each time, ~0.3 ms an answer on the 2-core
    machine, a fifth of the sidebar's whole budget per request at 1,500 req/s."""
    nonce = NONCE_SLOT.removeprefix("'nonce-").removesuffix("'")
    return build_policy(replace={k: list(v) for k, v in replace} or None, nonce=nonce)


@receiver(setting_changed)
def _forget_policy_text(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        policy_text.cache_clear()


def _replacement(response: HttpResponseBase) -> Replacement | None:
    """The response's replaced directives as a cache key, or None when it needs django-csp's
    full treatment."""
    if any(hasattr(response, name) for name in OTHER_OVERRIDES):
        return None
    replace = getattr(response, "_csp_replace", None) or {}
    items = []
    for directive, values in sorted(replace.items()):
        if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
            return None
        items.append((directive, tuple(values)))
    return tuple(items)


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with two differences:

    - the nonce is made for every answer rather than only for those whose template asked for
      it: every answer carries the same policy, and a page that forgot its nonce fails visibly
      (its script is refused) rather than quietly getting another policy;
    - the policy's text is django-csp's own, built once (policy_text) and given each answer's
      nonce, for answers that only replace directives (the till) or change nothing."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        nonce = str(request.csp_nonce)  # type: ignore[attr-defined]  # set by process_request
        replacement = _replacement(response)
        policy = settings.CONTENT_SECURITY_POLICY
        if (
            replacement is None
            or getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
            or policy.get("EXCLUDE_URL_PREFIXES")
        ):
            return super().process_response(request, response)
        if settings.DEBUG and response.status_code in (404, 500):
            return response  # Django's debug pages, as django-csp leaves them
        if HEADER not in response and not getattr(response, "_csp_exempt", False):
            response[HEADER] = policy_text(replacement).replace(NONCE_SLOT, f"'nonce-{nonce}'")
        return response


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

"""API throttles: per API key and per signed-in user, on the cache every process shares.

Two quotas: API_THROTTLE_RATE for every request, and API_BULK_THROTTLE_RATE as well for the bulk
routes (those whose URL name ends in `-bulk` or `-import`). Each is a fixed window counted with
the cache's atomic `incr` (one small integer per client and window), not DRF's stock throttles'
list of timestamps, which is read and rewritten whole on each request and loses counts when two
workers race.

Every throttled answer carries the quota in the fields of draft-ietf-httpapi-ratelimit-headers-07:
`RateLimit-Policy: 1200;w=60` and `RateLimit: limit=1200, remaining=1187, reset=42`; a refused
request is a 429 with `Retry-After`, in the API's error shape. The cache being down lets requests
through (and says so in the log): a throttle must not take the API down with it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.models import ApiKey
from accounts.ratelimit import count_in_window

if TYPE_CHECKING:  # rest_framework.views imports this module for its default throttles
    from rest_framework.views import APIView

log = logging.getLogger(__name__)

# Where a request's quotas wait for RateLimitHeadersMiddleware (on the Django request).
QUOTAS_ATTR = "comeback_rate_quotas"
PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """`1200/min` -> (1200, 60); `off` or empty -> None (not throttled)."""
    if not rate or rate.strip().lower() == "off":
        return None
    count, _, period = rate.strip().partition("/")
    if period not in PERIODS or not count.isdigit() or int(count) < 1:
        raise ValueError(f"A rate is like 1200/min (per s, min, h or day), not {rate!r}.")
    return int(count), PERIODS[period]


@dataclass(frozen=True)
class Quota:
    limit: int
    window: int  # seconds
    remaining: int
    reset: int  # seconds until the window ends


def client_of(request: Request) -> str | None:
    """Whose quota a request counts against: its API key, else its signed-in user."""
    if isinstance(request.auth, ApiKey):
        return f"key{request.auth.pk}"
    if request.user.is_authenticated:
        return f"user{request.user.pk}"
    return None


def is_bulk(request: Request) -> bool:
    match = request.resolver_match
    return bool(match and match.url_name and match.url_name.endswith(("-bulk", "-import")))


class RateLimited(exceptions.Throttled):
    default_code = "throttled"
    extra_detail_singular = "Try again in {wait} second."
    extra_detail_plural = "Try again in {wait} seconds."


WINDOW_NAMES = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}


class _WindowThrottle(BaseThrottle):
    scope = ""
    setting = ""
    what = "requests"

    def __init__(self) -> None:
        self.rate = parse_rate(getattr(settings, self.setting))
        self.reset = 0

    def applies(self, request: Request) -> bool:
        return True

    def allow_request(self, request: Request, view: APIView) -> bool:
        client = client_of(request) if self.rate is not None and self.applies(request) else None
        if self.rate is None or client is None:
            return True
        limit, window = self.rate
        now = time.time()
        start = int(now // window) * window
        key = f"throttle:{self.scope}:{client}:{start}"
        try:
            count = count_in_window(key, window)
        except Exception:
            log.warning("Throttle cache unavailable; %s let through.", request.path, exc_info=True)
            return True
        self.reset = max(1, math.ceil(start + window - now))
        quota = Quota(limit, window, max(0, limit - count), self.reset)
        quotas: list[Quota] = getattr(request._request, QUOTAS_ATTR, [])
        setattr(request._request, QUOTAS_ATTR, [*quotas, quota])
        if count > limit:
            whose = "API key" if isinstance(request.auth, ApiKey) else "user"
            per = WINDOW_NAMES.get(window, f"{window} seconds")
            raise RateLimited(
                wait=self.reset,
                detail=f"Too many {self.what} for this {whose}: the limit is {limit} per {per}.",
            )
        return True

    def wait(self) -> float | None:
        return self.reset or None


class ApiRateThrottle(_WindowThrottle):
    scope = "api"
    setting = "API_THROTTLE_RATE"


class BulkRateThrottle(_WindowThrottle):
    scope = "bulk"
    setting = "API_BULK_THROTTLE_RATE"
    what = "bulk requests"

    def applies(self, request: Request) -> bool:
        return is_bulk(request)


def ratelimit_headers(quotas: list[Quota]) -> dict[str, str]:
    """The draft-07 fields: every policy that applied, and the one closest to running out."""
    tightest = min(quotas, key=lambda q: (q.remaining, q.limit))
    return {
        "RateLimit-Policy": ", ".join(f"{q.limit};w={q.window}" for q in quotas),
        "RateLimit": (
            f"limit={tightest.limit}, remaining={tightest.remaining}, reset={tightest.reset}"
        ),
    }


def add_ratelimit_headers(request: HttpRequest, response: HttpResponse) -> None:
    quotas = getattr(request, QUOTAS_ATTR, None)
    if quotas:
        for name, value in ratelimit_headers(quotas).items():
            response[name] = value

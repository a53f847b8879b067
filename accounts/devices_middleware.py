"""`request.device`: the paired till this request comes from (accounts.services.devices), or None.

Read once per request from the device cookie: one indexed lookup by the token's hash when the
cookie is there (a cookie naming no active device is deleted), no query at all when it is not
(every request but a paired tablet's, the benchmarked till sidebar among them).

A session signed in by PIN belongs to its till (TILL_SESSION_KEY): once the till is unpaired,
or the request no longer comes from it, the session ends, so a lost tablet does not stay
signed in for the rest of the idle limit.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

from accounts.models import Device
from accounts.services.devices import device_for_token

DEVICE_COOKIE = "comeback_device"
# Browsers cap a cookie's life at 400 days (RFC 6265bis); the token itself does not expire.
DEVICE_COOKIE_MAX_AGE = 400 * 24 * 3600
# A device token is 43 characters; anything much longer is not one, so it is not hashed.
MAX_TOKEN_LENGTH = 100
# The till a PIN session was opened on (accounts.device_views.TillSwitchView).
TILL_SESSION_KEY = "till_device_id"


def request_device(request: HttpRequest) -> Device | None:
    return getattr(request, "device", None)


def set_device_cookie(response: HttpResponse, raw_token: str) -> None:
    response.set_cookie(
        DEVICE_COOKIE,
        raw_token,
        max_age=DEVICE_COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=not settings.DEBUG,
    )


class DeviceMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = request.COOKIES.get(DEVICE_COOKIE, "")
        device = device_for_token(raw) if raw and len(raw) <= MAX_TOKEN_LENGTH else None
        request.device = device  # type: ignore[attr-defined]
        session = getattr(request, "session", None)
        till_id = session.get(TILL_SESSION_KEY) if session is not None else None
        if till_id is not None and (device is None or device.pk != till_id):
            logout(request)
        response = self.get_response(request)
        if raw and device is None and DEVICE_COOKIE not in response.cookies:
            # Unpaired, or its location archived: stop sending (and us hashing) a dead token.
            # (Unless this answer pairs the tablet anew and sets a live one.)
            response.delete_cookie(DEVICE_COOKIE, path="/", samesite="Lax")
        return response

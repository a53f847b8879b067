"""Sessions end SESSION_IDLE_MINUTES after their last request.

SESSION_COOKIE_AGE is the idle time, so a session's expiry (its row and its cookie) moves each
time it is saved. SESSION_SAVE_EVERY_REQUEST would save it on every request, a write for each
page and each till poll; here a session is saved when its last-seen stamp is a minute old, so the
expiry moves at most once a minute, and the stamp itself ends a session idle past the limit
whatever the session backend.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout
from django.http import HttpRequest, HttpResponse

SEEN_AT = "seen_at"
# How stale the stamp may get before a request saves the session again.
STAMP_RESOLUTION_SECONDS = 60


def stamp_session(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """On login (user_logged_in), so the first requests after it write nothing."""
    if request is not None and hasattr(request, "session"):
        request.session[SEEN_AT] = int(time.time())


class SessionIdleMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = request.session
        # Only signed-in sessions: an API key's request has none, and nothing is loaded for it.
        if SESSION_KEY in session:
            now = int(time.time())
            seen_at = session.get(SEEN_AT)
            if seen_at is not None and now - seen_at > settings.SESSION_IDLE_MINUTES * 60:
                logout(request)
            elif seen_at is None or now - seen_at >= STAMP_RESOLUTION_SECONDS:
                session[SEEN_AT] = now
        return self.get_response(request)

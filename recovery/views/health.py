"""/readyz: the engine's readiness as JSON (200 ok, 503 failing); no login, no personal data."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from recovery.health import readiness


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    report = readiness(now=timezone.now())
    return JsonResponse(report.as_json(), status=200 if report.ok else 503)

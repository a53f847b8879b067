"""What browsers report the Content-Security-Policy refused (its `report-uri`), logged for
operators as one bounded line each on the `comeback.csp` logger.

Browsers post without credentials or a CSRF token, so anyone can: the body is parsed by the
pure rule below, junk is a 4xx naming what was wrong, and logging is capped per minute so a
flood cannot fill the logs. URLs are logged as paths only: a query string can hold a customer's
name (the search page) or an id."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.ratelimit import count_in_window
from cxcore.api.errors import error_body

logger = logging.getLogger("comeback.csp")

MAX_BODY_BYTES = 64 * 1024  # a browser's report is 1-2 KB; a batch of them a few
MAX_REPORTS = 100  # in one Reporting API batch
MAX_FIELD = 200  # characters kept of each logged field
CONTENT_TYPES = ("application/csp-report", "application/reports+json", "application/json")


class InvalidReport(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Violation:
    directive: str
    blocked: str
    document: str
    source: str
    line_number: str

    def line(self) -> str:
        return (
            f"{self.directive} refused {self.blocked} on {self.document} "
            f"({self.source}:{self.line_number})"
        )


def _without_query(value: str) -> str:
    """A URL as scheme, host and path (`inline`, `eval` and the like as they are): its query
    and fragment may hold a name or an id."""
    if "://" in value:
        try:
            parts = urlsplit(value)
        except ValueError:  # "http://[not-an-address": keep what is before any query
            pass
        else:
            return f"{parts.scheme}://{parts.netloc}{parts.path}"[:MAX_FIELD]
    return value.split("?", 1)[0].split("#", 1)[0][:MAX_FIELD]


def _our_path(value: str) -> str:
    """A page or script of ours, by its path alone (the host is ours)."""
    without = _without_query(value)
    if "://" in without:
        without = "/" + without.split("://", 1)[1].partition("/")[2]
    return without or "?"


def _text(report: dict[str, Any], key: str, field: str) -> str:
    value = report.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidReport(f"{field}.{key}", "Must be a string or a number.")
    # One log line per violation, whatever was posted: no newlines or other control characters.
    return "".join(c if c.isprintable() else "?" for c in str(value)[:MAX_FIELD])


def _violation(report: Any, field: str, keys: tuple[str, str, str, str, str]) -> Violation:
    if not isinstance(report, dict):
        raise InvalidReport(field, "Must be an object.")
    directive, blocked, document, source, line_number = (_text(report, key, field) for key in keys)
    return Violation(
        directive=directive or "?",
        blocked=_without_query(blocked) or "?",
        document=_our_path(document),
        source=_our_path(source),
        line_number=line_number or "?",
    )


LEGACY_KEYS = ("effective-directive", "blocked-uri", "document-uri", "source-file", "line-number")
REPORTING_KEYS = ("effectiveDirective", "blockedURL", "documentURL", "sourceFile", "lineNumber")


def violations_from_body(body: bytes) -> list[Violation]:
    """The violations in a report body: the `report-uri` form (`{"csp-report": {…}}`) or a
    Reporting API batch (`[{"type": "csp-violation", "body": {…}}, …]`, other types ignored)."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidReport("body", "Must be a JSON document.") from exc
    if isinstance(document, dict):
        report = document.get("csp-report")
        if not isinstance(report, dict):
            raise InvalidReport("csp-report", "Must be an object.")
        return [_violation(report, "csp-report", LEGACY_KEYS)]
    if not isinstance(document, list):
        raise InvalidReport("csp-report", "Must be a csp-report object or a list of reports.")
    if len(document) > MAX_REPORTS:
        raise InvalidReport("reports", f"At most {MAX_REPORTS} reports at once.")
    violations = []
    for index, item in enumerate(document):
        field = f"reports[{index}]"
        if not isinstance(item, dict):
            raise InvalidReport(field, "Must be an object.")
        if item.get("type") == "csp-violation":
            violations.append(_violation(item.get("body"), f"{field}.body", REPORTING_KEYS))
    return violations


def _may_log(count: int) -> bool:
    """Whether this minute's cap on logged reports leaves room for `count` more. The counter
    is in the shared cache; if the cache is down, log (a flood of logs beats a silent bug)."""
    limit = settings.CSP_VIOLATIONS_LOGGED_PER_MINUTE
    key = f"csp-reports-logged:{int(time.time() // 60)}"
    try:
        return count_in_window(key, 60, by=count) <= limit
    except Exception:  # the cache is an optimisation here, never a reason to fail
        return True


def refused(status: int, field: str | None, message: str) -> JsonResponse:
    code = {400: "invalid", 405: "method_not_allowed", 413: "too_large", 415: "unsupported"}[status]
    body = error_body(status, [{"field": field, "code": code, "message": message}])
    return JsonResponse(body, status=status)


@csrf_exempt  # browsers send reports without a token (or any credentials)
def csp_report(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        response = refused(405, None, "Reports are POSTed.")
        response["Allow"] = "POST"
        return response
    content_type = request.content_type or ""
    if content_type not in CONTENT_TYPES:
        return refused(415, "Content-Type", f"Must be one of {', '.join(CONTENT_TYPES)}.")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        return refused(413, "body", f"Reports are limited to {MAX_BODY_BYTES} bytes.")
    try:
        violations = violations_from_body(request.body)
    except InvalidReport as exc:
        return refused(400, exc.field, exc.message)
    if violations and _may_log(len(violations)):
        for violation in violations:
            logger.warning("CSP violation: %s", violation.line())
    return HttpResponse(status=204)

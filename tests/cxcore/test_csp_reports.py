"""/csp-report/: the browsers' reports of what the policy refused, logged for operators. Anyone
may post to it (browsers send no credentials), so junk is a 4xx naming what was wrong, never a
500, and what is logged is bounded and holds no query strings (a search URL holds a name)."""

from __future__ import annotations

import json
import logging

import pytest
from django.core.cache import cache
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxcore.csp_reports import MAX_BODY_BYTES, InvalidReport, violations_from_body

LEGACY = {
    "csp-report": {
        "document-uri": "https://comeback.example.com/customers/?q=Margaret+Lyon",
        "referrer": "",
        "violated-directive": "style-src-elem",
        "effective-directive": "style-src-elem",
        "original-policy": "default-src 'self'; …",
        "disposition": "enforce",
        "blocked-uri": "inline",
        "line-number": 25,
        "source-file": "https://comeback.example.com/customers/?q=Margaret+Lyon",
        "status-code": 200,
        "script-sample": "",
    }
}
REPORTING_API = [
    {
        "type": "csp-violation",
        "age": 10,
        "url": "https://comeback.example.com/pos/",
        "body": {
            "documentURL": "https://comeback.example.com/pos/?customer=12",
            "effectiveDirective": "img-src",
            "blockedURL": "https://tracker.example.net/pixel.gif?who=12",
            "sourceFile": "https://comeback.example.com/static/vendor/htmx.min.js",
            "lineNumber": 1,
            "disposition": "enforce",
        },
    },
    {"type": "deprecation", "url": "https://comeback.example.com/", "body": {"id": "x"}},
]


@pytest.fixture(autouse=True)
def _fresh_log_cap():
    """The per-minute cap counts in the (process-local) test cache: start each test at 0."""
    cache.clear()


def post(body: bytes | str, content_type: str = "application/csp-report"):
    client = Client(enforce_csrf_checks=True)  # browsers send no CSRF token: none is needed
    return client.post("/csp-report/", data=body, content_type=content_type)


def test_a_browsers_report_is_logged_without_query_strings(db, caplog):
    with caplog.at_level(logging.WARNING, logger="comeback.csp"):
        response = post(json.dumps(LEGACY))
    assert response.status_code == 204
    [record] = [r for r in caplog.records if r.name == "comeback.csp"]
    message = record.getMessage()
    assert "style-src-elem refused inline on /customers/ (/customers/:25)" in message
    assert "Margaret" not in message and "q=" not in message


def test_a_reporting_api_batch_logs_its_csp_violations_only(db, caplog):
    with caplog.at_level(logging.WARNING, logger="comeback.csp"):
        response = post(json.dumps(REPORTING_API), "application/reports+json")
    assert response.status_code == 204
    messages = [r.getMessage() for r in caplog.records if r.name == "comeback.csp"]
    assert len(messages) == 1
    assert "img-src refused https://tracker.example.net/pixel.gif on /pos/" in messages[0]
    assert "who=" not in messages[0] and "customer=" not in messages[0]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        ("not json", "application/csp-report", 400, "body"),
        (" ", "application/csp-report", 400, "body"),
        (b"\xff\xfe\x00", "application/csp-report", 400, "body"),
        ('"a string"', "application/csp-report", 400, "csp-report"),
        ("[1, 2, 3]", "application/reports+json", 400, "reports[0]"),
        ('{"csp-report": []}', "application/csp-report", 400, "csp-report"),
        ('{"csp-report": {"blocked-uri": {"a": 1}}}', "application/csp-report", 400,
         "csp-report.blocked-uri"),
        ('[{"type": "csp-violation", "body": 7}]', "application/reports+json", 400,
         "reports[0].body"),
        ("[" * 5000 + "]" * 5000, "application/reports+json", 400, "body"),
        ('{"csp-report": {}}', "text/plain", 415, "Content-Type"),
        ("x" * (MAX_BODY_BYTES + 1), "application/csp-report", 413, "body"),
    ],
)  # fmt: skip
def test_junk_is_a_4xx_naming_what_was_wrong(db, body, content_type, status, field):
    response = post(body, content_type)
    assert response.status_code == status, response.content[:300]
    assert response.json()["errors"][0]["field"] == field


def test_a_forged_report_cannot_write_a_second_log_line(db, caplog):
    forged = {"csp-report": {"effective-directive": "img-src\nERROR admin password reset"}}
    with caplog.at_level(logging.WARNING, logger="comeback.csp"):
        assert post(json.dumps(forged)).status_code == 204
    [record] = [r for r in caplog.records if r.name == "comeback.csp"]
    assert "\n" not in record.getMessage()


def test_only_posts_are_taken(db):
    response = Client().get("/csp-report/")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed" and response["Allow"] == "POST"


def test_the_policy_sends_its_reports_there(client, db):
    policy = client.get("/accounts/login/")["Content-Security-Policy"]
    assert "report-uri /csp-report/" in policy.split("; ")


def test_logging_is_capped_so_a_flood_cannot_fill_the_logs(db, caplog, settings):
    settings.CSP_VIOLATIONS_LOGGED_PER_MINUTE = 3
    with caplog.at_level(logging.WARNING, logger="comeback.csp"):
        for _ in range(5):
            assert post(json.dumps(LEGACY)).status_code == 204
    assert len([r for r in caplog.records if r.name == "comeback.csp"]) == 3


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    )
)
def test_any_json_parses_or_is_refused_naming_a_field(value):
    """The rule itself, without the database: any JSON document is either violations or an
    InvalidReport, never another exception."""
    for wrapped in (value, {"csp-report": value}, [{"type": "csp-violation", "body": value}]):
        body = json.dumps(wrapped).encode()
        try:
            violations = violations_from_body(body)
        except InvalidReport as exc:
            assert exc.field
        else:
            for violation in violations:
                assert len(violation.line()) < 1200 and violation.line().isprintable()

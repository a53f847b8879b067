"""Lookups carry phones and emails: they take POST bodies, and access logs never print their
query strings (cxcore/access_log.py), under gunicorn and runserver alike."""

from __future__ import annotations

import json
import logging

import pytest
import requests

from accounts.services import create_api_key
from cxcore.access_log import (
    REDACTED,
    RedactLookupQueries,
    redact_request_line,
    redact_url,
)
from cxcore.services import EpisodeInput, record_episode
from tests.cxcore.test_tenancy import page_client
from tests.factories import LocationFactory, OrganizationFactory
from tests.gunicorn_server import gunicorn

PHONE_DIGITS = "7400123987"
EMAIL = "ana.lookup@example.com"
TOKEN = "Sekr3tT0kenNeverLogged"


@pytest.mark.parametrize(
    ("line", "logged"),
    [
        ("GET /api/v1/customers/?phone=%2B447400123987 HTTP/1.1",
         f"GET /api/v1/customers/?{REDACTED} HTTP/1.1"),
        ("GET /api/v1/sidebar/?email=a%40b.com&location=x HTTP/1.1",
         f"GET /api/v1/sidebar/?{REDACTED} HTTP/1.1"),
        ("GET /pos/lookup/?q=0555 HTTP/1.1", f"GET /pos/lookup/?{REDACTED} HTTP/1.1"),
        ("GET /customers/?q=Reyes HTTP/1.0", f"GET /customers/?{REDACTED} HTTP/1.0"),
        ("GET /customers/12/merge/?q=0555 HTTP/1.1",
         f"GET /customers/12/merge/?{REDACTED} HTTP/1.1"),
        ("GET /accounts/login/?next=/pos/lookup/%3Fq%3D0555 HTTP/1.1",
         f"GET /accounts/login/?{REDACTED} HTTP/1.1"),
        # links that are a credential lose their token, whatever follows it
        ("GET /accounts/invitations/Zm9vYmFy-tok_en/ HTTP/1.1",
         f"GET /accounts/invitations/{REDACTED}/ HTTP/1.1"),
        ("GET /accounts/reset/MTI/c3k7lm-0123abc/ HTTP/1.1",
         f"GET /accounts/reset/MTI/{REDACTED}/ HTTP/1.1"),
        ("POST /till/pair/pAiRtOkEn123/ HTTP/1.1", f"POST /till/pair/{REDACTED}/ HTTP/1.1"),
        ("POST /api/v1/connectors/square/sqtok456/ HTTP/1.1",
         f"POST /api/v1/connectors/square/{REDACTED}/ HTTP/1.1"),
        # ...but not the pages around them
        ("GET /accounts/reset/MTI/set-password/ HTTP/1.1",
         "GET /accounts/reset/MTI/set-password/ HTTP/1.1"),
        ("GET /accounts/reset/done/ HTTP/1.1", "GET /accounts/reset/done/ HTTP/1.1"),
        ("GET /api/v1/connectors/square/ HTTP/1.1", "GET /api/v1/connectors/square/ HTTP/1.1"),
        # what carries no identifier is logged as it came
        ("GET /api/v1/cases/?status=open HTTP/1.1", "GET /api/v1/cases/?status=open HTTP/1.1"),
        ("GET /customers/12/ HTTP/1.1", "GET /customers/12/ HTTP/1.1"),
        ("GET /customers/ HTTP/1.1", "GET /customers/ HTTP/1.1"),
        ("garbage", "garbage"),
    ],
)  # fmt: skip
def test_a_lookups_query_is_redacted_from_the_request_line(line, logged):
    assert redact_request_line(line) == logged


def test_a_referer_naming_a_lookup_is_cut_too():
    assert redact_url("https://x.example/pos/lookup/?q=0555") == (
        f"https://x.example/pos/lookup/?{REDACTED}"
    )
    assert redact_url("https://x.example/recovery/?status=open") == (
        "https://x.example/recovery/?status=open"
    )
    assert redact_url("https://x.example/accounts/invitations/tok123/") == (
        f"https://x.example/accounts/invitations/{REDACTED}/"
    )


def test_runservers_access_log_is_filtered():
    record = logging.LogRecord(
        "django.server", logging.INFO, __file__, 1, '"%s" %s %s',
        ("GET /pos/lookup/?q=07400123987 HTTP/1.1", "200", "512"), None,
    )  # fmt: skip
    assert RedactLookupQueries().filter(record)
    assert PHONE_DIGITS not in record.getMessage()
    assert record.getMessage() == f'"GET /pos/lookup/?{REDACTED} HTTP/1.1" 200 512'
    # and the filter is on the logger runserver writes to
    assert any(
        isinstance(f, RedactLookupQueries) for f in logging.getLogger("django.server").filters
    )


# --- POST lookups ----------------------------------------------------------------------------


@pytest.fixture
def ana(org, main_st):
    return record_episode(
        organization=org,
        data=EpisodeInput(
            kind="visit", identifiers={"phone": "07400 123987", "email": EMAIL}, name="Ana"
        ),
    ).episode.customer


def post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def test_the_api_lookups_take_a_post_body(api, ana):
    found = post(api, "/api/v1/customers/lookup/", {"phone": "+44" + PHONE_DIGITS})
    assert found.status_code == 200
    assert [c["id"] for c in found.json()["results"]] == [ana.pk]
    by_email = post(api, "/api/v1/customers/lookup/", {"email": EMAIL.upper()})
    assert [c["id"] for c in by_email.json()["results"]] == [ana.pk]
    sidebar = post(api, "/api/v1/sidebar/", {"phone": "07400 123987"})
    assert sidebar.status_code == 200
    assert sidebar.json()["customer"]["id"] == ana.pk
    bad = post(api, "/api/v1/sidebar/", {"phone": "not a phone"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "phone"
    assert api.get("/api/v1/customers/lookup/").status_code == 405
    bodies: list[object] = [[], "07400 123987", None, {"phone": ["07400 123987"]}]
    for body in bodies:
        for url in ("/api/v1/customers/lookup/", "/api/v1/sidebar/"):
            assert post(api, url, body).status_code == 400, (url, body)


def test_the_pages_lookups_take_a_post_body(owner, staff, ana):
    till = page_client(staff).post("/pos/lookup/", {"q": "07400 123987"})
    assert till.status_code == 200
    assert f'data-customer="{ana.pk}"' in till.content.decode()
    search = page_client(owner).post("/customers/", {"q": EMAIL})
    assert search.status_code == 200
    assert f"/customers/{ana.pk}/" in search.content.decode()


# --- under gunicorn, with its access log on --------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_gunicorns_access_log_never_prints_a_lookups_phone_or_email(tmp_path):
    org = OrganizationFactory.create(country="GB")
    location = LocationFactory.create(organization=org)
    _key, raw = create_api_key(organization=org, name="Till", location=location)
    auth = {"Authorization": f"Api-Key {raw}"}
    with gunicorn(tmp_path) as server:
        base = server.base
        assert requests.get(f"{base}/api/v1/customers/?phone=%2B44{PHONE_DIGITS}", headers=auth,
                            timeout=10).status_code == 200  # fmt: skip
        assert requests.get(f"{base}/api/v1/sidebar/?phone=0{PHONE_DIGITS}", headers=auth,
                            timeout=10).status_code == 200  # fmt: skip
        assert requests.get(f"{base}/api/v1/customers/", params={"email": EMAIL}, headers=auth,
                            timeout=10).status_code == 200  # fmt: skip
        # A page asked for without a session is sent to log in, its query in `next` (the
        # login page itself is not rendered here: it needs collected static files).
        for page in (f"/pos/lookup/?q=0{PHONE_DIGITS}", f"/customers/?q={EMAIL}"):
            response = requests.get(base + page, timeout=10, allow_redirects=False)
            assert (
                response.status_code == 302 and "/accounts/login/" in response.headers["Location"]
            )
        # Links that are a credential (how each answers is beside the point here: pages that
        # render need collected static files, as above).
        for link in (
            f"/accounts/invitations/{TOKEN}/",
            f"/till/pair/{TOKEN}/",
            f"/accounts/reset/MQ/{TOKEN}/",
            f"/api/v1/connectors/square/{TOKEN}/",
        ):
            requests.get(base + link, timeout=10, allow_redirects=False)
        # And a page whose Referer was a lookup.
        referer = {**auth, "Referer": f"{base}/customers/?q=0{PHONE_DIGITS}"}
        assert requests.get(f"{base}/api/v1/locations/", headers=referer, timeout=10).ok
    log = server.access_log.read_text()
    assert "/api/v1/customers/" in log and "/pos/lookup/" in log  # it did log them
    assert log.count(REDACTED) >= 6
    assert "/till/pair/" in log and "/accounts/invitations/" in log
    for secret in (PHONE_DIGITS, EMAIL, EMAIL.replace("@", "%40"), TOKEN):
        assert secret not in log, (secret, log)

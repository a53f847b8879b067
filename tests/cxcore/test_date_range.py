"""Dates outside 2000-2100 (cxcore.rules.EARLIEST_DATE, LATEST_DATE) are a 400 naming the
field on every endpoint and page that takes a date or a time, never a 500, and change nothing.

What takes one: an episode's `occurred_at` (POST /episodes/, each bulk item, POST /visits/),
the insights period (`from`, `to`; the API and the page), and the cursors that carry a time
(the timeline's `before`, the case list's `after`; the API and the pages)."""

from __future__ import annotations

import base64
import json

import pytest
from django.test import Client
from django.utils import timezone

from cxcore.keyset import encode_cursor
from cxcore.models import Customer, Episode
from cxcore.services import EpisodeInput, record_episode
from tests.cxcore.test_tenancy import page_client

OUT_OF_RANGE_TIMES = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:30:00+01:00",  # before year 1 in UTC: an overflow, not a time
    "1999-12-31T23:59:59Z",
    "2101-01-01T00:00:00Z",
    "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
    "9999-12-31T23:59:59.999999+00:00",
]
OUT_OF_RANGE_DATES = ["0001-01-01", "1999-12-31", "2101-01-01", "9999-12-31"]


def post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def assert_400_naming(response, field):
    assert response.status_code == 400, (response.status_code, response.content[:300])
    errors = response.json()["errors"]
    assert errors[0]["field"] == field, errors


def raw_cursor(*values) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


@pytest.fixture
def dana(org, main_st):
    return record_episode(
        organization=org, data=EpisodeInput(kind="visit", identifiers={"phone": "07400 111222"})
    ).episode


@pytest.mark.parametrize("when", OUT_OF_RANGE_TIMES)
def test_an_episode_at_an_impossible_time_is_a_400_naming_occurred_at(api, dana, when):
    before = (Episode.objects.count(), Customer.objects.count())
    body = {"customer": {"phone": "07400 999000"}, "kind": "visit", "occurred_at": when}
    assert_400_naming(post(api, "/api/v1/episodes/", body), "occurred_at")
    assert_400_naming(post(api, "/api/v1/visits/", body), "occurred_at")
    response = post(api, "/api/v1/episodes/bulk/", {"episodes": [body]})
    assert response.status_code == 200
    (result,) = response.json()["results"]
    assert result["status"] == "error"
    assert result["errors"][0]["field"] == "occurred_at"
    assert (Episode.objects.count(), Customer.objects.count()) == before


@pytest.mark.parametrize("day", OUT_OF_RANGE_DATES)
@pytest.mark.parametrize("param", ["from", "to"])
def test_an_insights_period_outside_the_range_is_a_400_naming_it(api, owner, param, day):
    assert_400_naming(api.get(f"/api/v1/insights/summary/?{param}={day}"), param)
    page = page_client(owner).get(f"/insights/?{param}={day}")
    assert page.status_code == 400
    assert "Must be between 2000-01-01 and 2100-12-31." in page.content.decode()


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00"])
def test_a_cursor_carrying_an_impossible_time_is_a_400_naming_the_cursor(api, owner, dana, when):
    before = raw_cursor(when, dana.pk)
    response = api.get(f"/api/v1/customers/{dana.customer_id}/timeline/?cursor={before}")
    assert_400_naming(response, "cursor")
    after = raw_cursor(3, when, 1)
    assert_400_naming(api.get(f"/api/v1/cases/?cursor={after}"), "cursor")
    # The pages say there is no such page, as for any cursor they did not give out.
    client = page_client(owner)
    assert client.get(f"/customers/{dana.customer_id}/?before={before}").status_code == 404
    assert client.get(f"/recovery/?after={after}").status_code == 404


def test_a_cursor_the_api_gave_out_still_works(api, dana):
    cursor = encode_cursor(timezone.now(), dana.pk)
    response = api.get(f"/api/v1/customers/{dana.customer_id}/timeline/?cursor={cursor}")
    assert response.status_code == 200


def test_no_page_answers_500_for_an_impossible_date(owner):
    client: Client = page_client(owner)
    client.raise_request_exception = False
    for day in OUT_OF_RANGE_DATES:
        for url in (f"/insights/?from={day}&to={day}", f"/recovery/?from={day}"):
            assert client.get(url).status_code < 500, url

"""API throttles (cxcore/api/throttling.py): per API key and per user, on the shared cache, with
429, Retry-After and the draft-07 RateLimit fields, in the API's error shape and its schema."""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from cxcore.api import throttling
from cxcore.api.throttling import parse_rate

LOCATIONS = "/api/v1/locations/"
EPISODES = "/api/v1/episodes/"
BULK = "/api/v1/episodes/bulk/"
HOURLY = 3600


@pytest.fixture(autouse=True)
def clock_mid_window(monkeypatch) -> None:
    """The windows are aligned to the clock, so a test run at 06:59:59 counted its requests in
    two hours' windows, or was told to retry in 1 second. The throttles' clock is held at one
    instant 30 minutes 30 seconds into this hour: mid-window for every period the tests use."""
    now = time.time()
    instant = now - now % HOURLY + 1830
    monkeypatch.setattr(throttling, "time", SimpleNamespace(time=lambda: instant))


def redis_cache_url() -> str:
    """The suite's Redis server, never a broker's database (15, 14, … in `make test`, one per
    process; tests/conftest.py): database 0, with a prefix of the test's own, so neither
    concurrent runs nor earlier ones share counts."""
    broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
    server = broker.rpartition("/")[0] if broker.count("/") > 2 else broker
    return f"{server}/0"


def caches_for(kind: str) -> dict:
    if kind == "redis":
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": redis_cache_url(),
                "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
            }
        }
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "comeback_cache",
        }
    }


@pytest.fixture(params=["redis", "database"])
def shared_cache(request, db) -> Iterator[str]:
    """Production's cache (Redis) and the embedded default's (a table, made as `migrate` makes
    it; here inside the test's transaction, so it goes with it)."""
    with override_settings(CACHES=caches_for(request.param)):
        if request.param == "database":
            call_command("createcachetable", verbosity=0)
        yield request.param


def assert_rate_limited(response, limit: int, window: int, policy: str | None = None) -> None:
    assert response.status_code == 429, response.content[:300]
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= window
    assert response["RateLimit-Policy"] == (policy or f"{limit};w={window}")
    match = re.fullmatch(r"limit=(\d+), remaining=(\d+), reset=(\d+)", response["RateLimit"])
    assert match, response["RateLimit"]
    assert (int(match[1]), int(match[2])) == (limit, 0)
    assert int(match[3]) == retry_after


@override_settings(API_THROTTLE_RATE="3/h")
def test_the_request_past_a_keys_limit_is_429_and_another_key_is_not_affected(
    shared_cache, api, till
):
    for n in range(3):
        response = api.get(LOCATIONS)
        assert response.status_code == 200
        assert response["RateLimit"].startswith(f"limit=3, remaining={2 - n}, reset=")
    refused = api.get(LOCATIONS)
    assert_rate_limited(refused, 3, HOURLY)
    body = refused.json()
    assert body["error"] == "throttled"
    assert body["errors"] == [
        {
            "field": None,
            "code": "throttled",
            "message": body["message"],
        }
    ]
    assert re.fullmatch(
        r"Too many requests for this API key: the limit is 3 per hour\. "
        r"Try again in \d+ seconds\.",
        body["message"],
    ), body["message"]
    assert till.get(LOCATIONS).status_code == 200  # another key: its own count


@override_settings(API_THROTTLE_RATE="1200/min")
def test_every_throttled_answer_carries_the_draft_07_fields(api):
    response = api.get(LOCATIONS)
    assert response.status_code == 200
    assert response["RateLimit-Policy"] == "1200;w=60"
    assert re.fullmatch(
        r"limit=1200, remaining=1199, reset=([1-9]|[1-5][0-9]|60)", response["RateLimit"]
    )


@override_settings(API_THROTTLE_RATE="2/min")
def test_the_message_says_a_minute_for_per_minute_rates(api):
    responses = [api.get(LOCATIONS) for _ in range(3)]
    if responses[2].status_code == 200:  # the minute turned between the requests
        responses.append(api.get(LOCATIONS))
    assert "the limit is 2 per minute" in responses[-1].json()["message"]


@override_settings(API_BULK_THROTTLE_RATE="2/h")
def test_bulk_has_its_own_lower_limit_and_single_writes_go_on(shared_cache, api, till):
    payload = {"episodes": [{"customer": {"phone": "07400 123456"}, "kind": "visit"}]}
    for _ in range(2):
        assert api.post(BULK, payload, format="json").status_code in (200, 201)
    refused = api.post(BULK, payload, format="json")
    assert_rate_limited(refused, 2, HOURLY, policy=f"100000;w=60, 2;w={HOURLY}")
    assert "Too many bulk requests for this API key" in refused.json()["message"]
    single = {"customer": {"phone": "07400 123456"}, "kind": "visit"}
    assert api.post(EPISODES, single, format="json").status_code == 201
    assert till.post(BULK, payload, format="json").status_code in (200, 201)


@override_settings(API_THROTTLE_RATE="2/h")
def test_a_signed_in_user_has_a_limit_of_their_own(shared_cache, owner, manager):
    mine, theirs = Client(), Client()
    mine.force_login(owner)
    theirs.force_login(manager)
    assert [mine.get(LOCATIONS).status_code for _ in range(3)] == [200, 200, 429]
    refused = mine.get(LOCATIONS)
    assert "for this user" in refused.json()["message"]
    assert theirs.get(LOCATIONS).status_code == 200


@override_settings(API_THROTTLE_RATE="off", API_BULK_THROTTLE_RATE="off")
def test_off_turns_the_throttles_off(api):
    response = api.get(LOCATIONS)
    assert response.status_code == 200
    assert "RateLimit" not in response


@override_settings(
    API_THROTTLE_RATE="1/h",
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    },
)
def test_with_the_cache_down_requests_go_through_and_the_log_says_so(api, caplog):
    with caplog.at_level(logging.WARNING, logger="cxcore.api.throttling"):
        assert [api.get(LOCATIONS).status_code for _ in range(3)] == [200, 200, 200]
    assert "Throttle cache unavailable" in caplog.text


def test_rates_are_read_strictly():
    assert parse_rate("1200/min") == (1200, 60)
    assert parse_rate("60/m") == (60, 60)
    assert parse_rate("5/s") == (5, 1)
    assert parse_rate("off") is None
    assert parse_rate("") is None
    for bad in ("1200", "0/min", "x/min", "10/week", "-1/min"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_the_schema_documents_the_429_on_every_throttled_operation(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    operations = [
        (path, method, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
        # Square's notifications are signed, not sent with a key or a session: nothing to
        # count a rate by (and Square retries what we refuse).
        and path != "/api/v1/connectors/square/{token}/"
    ]
    assert operations

    def resolved(node: dict) -> dict:
        # Shared responses and headers are components (cxcore.api.schema): follow the $ref.
        while "$ref" in node:
            _, section, name = node["$ref"].removeprefix("#/").split("/")
            node = schema["components"][section][name]
        return node

    for path, method, op in operations:
        throttled = op["responses"].get("429")
        assert throttled, f"{method} {path}"
        throttled = resolved(throttled)
        assert set(throttled["headers"]) == {"Retry-After", "RateLimit-Policy", "RateLimit"}
        assert throttled["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBodySchema"
        }
    bulk = resolved(schema["paths"]["/api/v1/episodes/bulk/"]["post"]["responses"]["429"])
    assert "API_BULK_THROTTLE_RATE" in bulk["description"]
    error = schema["components"]["schemas"]["ErrorBodySchema"]
    assert set(error["required"]) == {"error", "message", "errors"}

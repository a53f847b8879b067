"""The pure delivery rules: schedule, Retry-After, giving up, which addresses are public."""

from datetime import UTC, datetime, timedelta

import pytest

from webhooks.rules import (
    MAX_ATTEMPTS,
    is_public_address,
    next_delay,
    parse_retry_after,
    should_disable,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SCHEDULE = [
    timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
    timedelta(hours=5), timedelta(hours=10), timedelta(hours=14), timedelta(hours=20),
    timedelta(hours=24),
]  # fmt: skip


def test_the_schedule_after_each_failed_attempt_then_give_up():
    waits = [next_delay(n, status_code=500, retry_after=None) for n in range(1, MAX_ATTEMPTS + 1)]
    assert waits == [*SCHEDULE, None]


def test_retry_after_replaces_the_step_on_429_and_503_only_within_bounds():
    assert next_delay(1, status_code=429, retry_after=timedelta(seconds=120)) == timedelta(
        seconds=120
    )
    assert next_delay(3, status_code=503, retry_after=timedelta(0)) == timedelta(seconds=1)
    assert next_delay(1, status_code=503, retry_after=timedelta(days=9)) == timedelta(hours=24)
    assert next_delay(1, status_code=500, retry_after=timedelta(seconds=120)) == SCHEDULE[0]
    assert next_delay(MAX_ATTEMPTS, status_code=429, retry_after=timedelta(seconds=1)) is None


def test_retry_after_reads_seconds_and_http_dates():
    assert parse_retry_after("30", now=NOW) == timedelta(seconds=30)
    assert parse_retry_after("Tue, 01 Dec 2026 12:10:00 GMT", now=NOW) == timedelta(minutes=10)
    assert parse_retry_after("Tue, 01 Dec 2026 11:00:00 GMT", now=NOW) == timedelta(0)
    assert parse_retry_after("soon", now=NOW) is None
    assert parse_retry_after(None, now=NOW) is None


def test_three_days_of_failure_disables():
    assert not should_disable(failing_since=None, now=NOW)
    assert not should_disable(failing_since=NOW - timedelta(days=3) + timedelta(seconds=1), now=NOW)
    assert should_disable(failing_since=NOW - timedelta(days=3), now=NOW)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0",
     "100.64.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1",
     "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::1", "nonsense"],
)  # fmt: skip
def test_private_and_special_addresses_are_not_public(address):
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are(address):
    assert is_public_address(address)

"""Pure rules of delivery: the retry schedule, Retry-After, when to give up, which addresses."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

# The wait after each failed attempt (after the 1st, the 2nd, ...): ten attempts in all.
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# A receiver's Retry-After is honoured within these bounds: at least a second (no hot loop),
# at most the longest step of the schedule.
RETRY_AFTER_MIN = timedelta(seconds=1)
RETRY_AFTER_MAX = RETRY_DELAYS[-1]
# Statuses whose Retry-After we read.
RETRY_AFTER_STATUSES = frozenset({429, 503})
# Failing this long without a success disables the endpoint (and its owners are told).
DISABLE_AFTER = timedelta(days=3)


def parse_retry_after(value: str | None, *, now: datetime) -> timedelta | None:
    """A Retry-After header (seconds, or an HTTP date) as a wait, or None if unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=min(int(value), 10**7))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(when - now, timedelta(0))


def next_delay(
    attempts: int, *, status_code: int | None, retry_after: timedelta | None
) -> timedelta | None:
    """The wait before the next attempt after `attempts` failed ones, or None to give up.

    On 429 and 503 the receiver's Retry-After (bounded) replaces the schedule's step."""
    if attempts >= MAX_ATTEMPTS:
        return None
    delay = RETRY_DELAYS[attempts - 1]
    if status_code in RETRY_AFTER_STATUSES and retry_after is not None:
        delay = min(max(retry_after, RETRY_AFTER_MIN), RETRY_AFTER_MAX)
    return delay


def is_success(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300


def should_disable(*, failing_since: datetime | None, now: datetime) -> bool:
    return failing_since is not None and now - failing_since >= DISABLE_AFTER


def is_public_address(address: str) -> bool:
    """Whether an IP address is on the public internet (not private, loopback, link-local,
    multicast, reserved or unspecified), looking through IPv4-mapped and 6to4/Teredo forms."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
    )

"""The one fixed-window counter every limit counts with: the API's throttles, sign-up posts,
password-reset requests, PIN attempts on a till, CSP reports.

A counter per window lives in the shared cache (CACHE_URL); the caller puts the window's start
in the key. On Redis `incr` is atomic, so parallel requests count exactly; on the default
database cache it is a read then a write, so a burst may slip a few past (production sets
CACHE_URL to Redis). A limit must not take its page down with it: `count_or_none` answers
None when the cache is unreachable, and the caller lets the request through.
"""

from __future__ import annotations

import logging

from django.core.cache import cache

log = logging.getLogger(__name__)


def count_in_window(key: str, window: int, by: int = 1) -> int:
    """Add `by` to the counter `key` and return the new count; the cache's errors propagate."""
    try:
        cache.add(key, 0, timeout=window + 5)
        return int(cache.incr(key, by))
    except ValueError:  # the entry was evicted between add and incr: this is the first
        cache.set(key, by, timeout=window + 5)
        return by


def count_or_none(key: str, window: int, by: int = 1) -> int | None:
    """count_in_window, or None (logged) when the cache cannot be reached."""
    try:
        return count_in_window(key, window, by)
    except Exception:
        log.warning("Rate limit %s not counted: the cache is unavailable.", key, exc_info=True)
        return None

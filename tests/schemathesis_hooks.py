"""What schemathesis needs to know beyond the schema, for tests/test_schemathesis.py.

The schema says what a well-formed request is; some of the API's rules are not about form and
OpenAPI 3.0 cannot say them: a phone number valid for its country, an opaque cursor only the API
hands out, the location slugs and customer ids that exist, a date range of at most a year, at
least one of several query parameters, a time not in the future. A request that breaks one is
a 400 naming the field, which schemathesis' `positive_data_acceptance` check would count as a
valid request refused. So:

- the `phone` format generates valid numbers (the schema names the format; this gives it values);
- `map_case` brings each *positive* case within those rules, and only those (each rule below
  says which endpoint answers 400 for it and why). Negative cases are left alone: they must
  still be refused, and `negative_data_rejection` checks that they are.

Loaded by the schemathesis CLI through SCHEMATHESIS_HOOKS; the values that exist (location slugs,
customer ids) come from the JSON file the test names in COMEBACK_SCHEMATHESIS_SEED.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import MutableMapping
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

import phonenumbers
import schemathesis
from hypothesis import strategies as st
from schemathesis.generation.case import Case
from schemathesis.hooks import HookContext

# The earliest time an episode may have happened (cxcore.services.episodes) and the dates
# insights take (cxcore.rules.check_date_in_range), at most a year apart (InsightsQuerySerializer).
EARLIEST_OCCURRED_AT = datetime(2000, 1, 1, tzinfo=UTC)
EARLIEST_DATE, LATEST_DATE = date(2000, 1, 1), date(2100, 12, 31)
MAX_INSIGHTS_DAYS = 366
PAST_TIMES = ["2020-02-29T23:59:59Z", "2024-06-01T08:30:00+01:00", "2025-12-31T12:00:00Z"]
DATES = ["2025-01-01", "2026-06-30"]
IDENTIFIER_PARAMETERS = ("customer", "phone", "email", "card", "pos_id")


def valid_phone_numbers() -> list[str]:
    """Numbers phonenumbers holds valid, written as people write them."""
    numbers = []
    for region in ("GB", "US", "IE", "FR", "DE"):
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            for style in (
                phonenumbers.PhoneNumberFormat.E164,
                phonenumbers.PhoneNumberFormat.INTERNATIONAL,
            ):
                numbers.append(phonenumbers.format_number(number, style))
            if region == "GB":  # the test organization's country: national numbers too
                numbers.append(
                    phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
                )
    return numbers


schemathesis.openapi.format("phone", st.sampled_from(valid_phone_numbers()))


@cache
def seed() -> dict[str, Any]:
    """What exists in the database under test: {"locations": [...], "customers": [...]}."""
    path = os.environ.get("COMEBACK_SCHEMATHESIS_SEED")
    if not path:
        return {"locations": [], "customers": []}
    with open(path) as file:
        loaded: dict[str, Any] = json.load(file)
    return loaded


def pick(values: list[Any], key: Any) -> Any:
    """One of `values`, the same one for the same `key` (so a run stays deterministic)."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return values[int.from_bytes(digest[:4], "big") % len(values)]


def is_positive(case: Case) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


def known_location(value: Any) -> Any:
    # GET /cases/?location= filters by one of the tenant's locations: another is a 400 (the
    # queue's filter bar says so); the writes and the sidebar answer 404, which is fine, but a
    # real slug takes the case past the lookup into the code behind it.
    locations = seed()["locations"]
    if not locations or value in locations or value in (None, ""):
        return value
    return pick(locations, value)


def public_webhook_url(value: str) -> str:
    return "https://hooks.example.com/" + hashlib.sha256(value.encode()).hexdigest()[:16]


def past_time(value: Any) -> Any:
    # POST /episodes/, /visits/, /checks/: occurred_at in the future or before 2000 is a 400.
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return value
    if when.tzinfo is None or EARLIEST_OCCURRED_AT <= when <= datetime.now(UTC):
        return value
    return pick(
        ["2020-02-29T23:59:59Z", "2024-06-01T08:30:00+01:00", "2025-12-31T12:00:00Z"], value
    )


def in_date_range(value: Any) -> Any:
    try:
        day = date.fromisoformat(str(value))
    except ValueError:
        return value
    return (
        value if EARLIEST_DATE <= day <= LATEST_DATE else pick(["2025-01-01", "2026-06-30"], value)
    )


def idempotency_key(case: Case) -> str:
    # A client sends one key per distinct request: the same key with another body is a 422
    # (cxcore.services.idempotency), and a generator reuses short strings all the time. The
    # key here is the request's own digest, so a repeated request is a replay, as it should be.
    body = json.dumps(case.body, sort_keys=True, default=str)
    return "st-" + hashlib.sha256(f"{case.method} {case.path} {body}".encode()).hexdigest()


@schemathesis.hook
def map_case(context: HookContext, case: Case) -> Case:
    if not is_positive(case):
        return case
    # Mappings, not dicts: the headers are a requests CaseInsensitiveDict.
    query = case.query if isinstance(case.query, MutableMapping) else None
    body = case.body if isinstance(case.body, MutableMapping) else None
    headers = case.headers if isinstance(case.headers, MutableMapping) else None
    path = case.operation.path

    if query is not None:
        # A cursor is opaque: only a page's `next` (the event list's `after`) carries one,
        # anything else is a 400.
        query.pop("cursor", None)
        if path.endswith("/events/"):
            query.pop("after", None)
        if "location" in query:
            query["location"] = known_location(query["location"])
        if (
            case.method.upper() == "GET"
            and path.endswith("/sidebar/")
            and not any(query.get(k) for k in IDENTIFIER_PARAMETERS)
        ):
            # The sidebar needs one of customer, phone, email, card or pos_id (a 400 without).
            customers = seed()["customers"]
            if customers:
                query["customer"] = pick(customers, sorted(query.items(), key=str))
        if path.endswith("/insights/summary/"):
            # An empty value is no value (allowEmptyValue): leave it out.
            start, end = (query.get(name) or None for name in ("from", "to"))
            for name in ("from", "to"):
                if query.get(name) == "":
                    del query[name]
            if start is not None:
                query["from"] = start = in_date_range(start)
            if end is not None:
                query["to"] = end = in_date_range(end)
            if start is not None and end is not None:
                # `from` after `to`, or more than a year between them, is a 400.
                low, high = sorted((date.fromisoformat(start), date.fromisoformat(end)))
                high = min(high, low + timedelta(days=MAX_INSIGHTS_DAYS - 1))
                query["from"], query["to"] = low.isoformat(), high.isoformat()
            elif start is not None:
                # `from` alone runs to today: within the year before today, or a 400.
                today = date.today()
                if not today - timedelta(days=MAX_INSIGHTS_DAYS - 1) <= date.fromisoformat(start):
                    query["from"] = (today - timedelta(days=7)).isoformat()
                elif date.fromisoformat(start) > today:
                    query["from"] = today.isoformat()

    if body is not None:
        if "occurred_at" in body:
            body["occurred_at"] = past_time(body["occurred_at"])
        if isinstance(body.get("location"), str):
            body["location"] = known_location(body["location"])
        if path.endswith("/resolve/"):
            # `actions` are ids of this case's suggested actions; others are a 400.
            body.pop("actions", None)
        url = body.get("url")
        if "/webhooks/" in path and isinstance(url, str):
            # A webhook goes to a public https address (its name resolved at every send, a
            # private one refused when saved): what a URL pattern cannot say.
            body["url"] = public_webhook_url(url)
        duplicate = body.get("duplicate")
        if (
            path.endswith("/merge/")
            and isinstance(duplicate, int)
            and duplicate == (case.path_parameters or {}).get("id")
        ):
            # Merging a customer into itself is a 400.
            body["duplicate"] = duplicate + 1

    if headers is not None and "Idempotency-Key" in headers:
        headers["Idempotency-Key"] = idempotency_key(case)
    return case

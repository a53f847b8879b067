"""Invariant 6: bad input gets a clear 4xx naming the field, never a 500, and changes nothing.

Every rejected request below is checked three ways: the status, the first error naming the
field (a dotted path such as "customer.phone", "rating.value", "touchpoints[0]"), and that no
episode, customer, identifier, idempotency record or correction was written or changed.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cxcore.models import (
    Customer,
    Episode,
    ExperienceCorrection,
    IdempotencyRecord,
    Identifier,
)
from cxcore.services import EpisodeInput, record_episode

EPISODES = "/api/v1/episodes/"
BULK = "/api/v1/episodes/bulk/"
CUSTOMERS = "/api/v1/customers/"

PHONE = "07400 123456"
DROP = object()  # marks a key to leave out of the body


# --- helpers ---------------------------------------------------------------------------------


def episode_body(**fields) -> dict:
    """A valid episode body with some fields replaced (or dropped with DROP)."""
    body: dict = {"customer": {"phone": PHONE}, "kind": "visit"}
    for key, value in fields.items():
        if value is DROP:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def as_json(value) -> bytes:
    # ensure_ascii escapes lone surrogates as \ud800, which is how a client sends them.
    return json.dumps(value).encode("ascii")


def post_json(client, url, value, **extra):
    return client.post(url, data=as_json(value), content_type="application/json", **extra)


def post_raw(client, url, raw: bytes, content_type="application/json", **extra):
    return client.post(url, data=raw, content_type=content_type, **extra)


def snapshot() -> dict:
    """Everything a write could touch, compared before and after a rejected request."""
    return {
        "episodes": list(Episode.objects.order_by("pk").values()),
        "customers": list(Customer.objects.order_by("pk").values()),
        "identifiers": list(Identifier.objects.order_by("pk").values()),
        "idempotency": IdempotencyRecord.objects.count(),
        "corrections": ExperienceCorrection.objects.count(),
    }


def assert_error(response, status: int, field) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert isinstance(body.get("errors"), list), body
    assert body["errors"], body
    assert isinstance(body["errors"][0]["message"], str), body
    if field is not ANY_FIELD:
        assert body["errors"][0]["field"] == field, body
    return body


ANY_FIELD = object()


def cursor_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture
def known(org, main_st, harbour):
    """An existing customer with one episode, so 'nothing changed' covers updates too."""
    result = record_episode(
        organization=org,
        data=EpisodeInput(
            kind="visit",
            identifiers={"phone": "07400 111111"},
            name="Dana",
            location=main_st,
            occurred_at=timezone.now() - timedelta(days=1),
        ),
    )
    return result.episode


# --- POST /episodes/: every field ------------------------------------------------------------

LONG = "x" * 5000

FIELD_CASES = [
    # customer
    pytest.param(episode_body(customer=DROP), 400, "customer", id="customer-missing"),
    pytest.param(episode_body(customer=None), 400, "customer", id="customer-null"),
    pytest.param(episode_body(customer={}), 400, "customer", id="customer-empty"),
    pytest.param(episode_body(customer=PHONE), 400, "customer", id="customer-a-string"),
    pytest.param(episode_body(customer=[PHONE]), 400, "customer", id="customer-a-list"),
    pytest.param(episode_body(customer={"name": "Dan"}), 400, "customer", id="customer-only-name"),
    pytest.param(
        episode_body(customer={"phone": "", "email": ""}), 400, "customer.phone", id="ids-blank"
    ),
    pytest.param(episode_body(customer={"id": "abc"}), 400, "customer.id", id="id-text"),
    pytest.param(episode_body(customer={"id": 1.5}), 400, "customer.id", id="id-float"),
    pytest.param(episode_body(customer={"id": True}), 400, "customer.id", id="id-bool"),
    pytest.param(episode_body(customer={"id": [1]}), 400, "customer.id", id="id-list"),
    pytest.param(episode_body(customer={"id": {"a": 1}}), 400, "customer.id", id="id-dict"),
    pytest.param(episode_body(customer={"id": None}), 400, "customer.id", id="id-null"),
    pytest.param(episode_body(customer={"id": 0}), 400, "customer.id", id="id-zero"),
    pytest.param(episode_body(customer={"id": -5}), 400, "customer.id", id="id-negative"),
    pytest.param(episode_body(customer={"id": 2**63}), 400, "customer.id", id="id-over-bigint"),
    pytest.param(episode_body(customer={"id": 10**40}), 400, "customer.id", id="id-huge"),
    pytest.param(
        episode_body(customer={"id": "9" * 2000}), 400, "customer.id", id="id-2000-digits"
    ),
    pytest.param(episode_body(customer={"id": 999_999_999}), 404, "customer.id", id="id-unknown"),
    pytest.param(episode_body(customer={"phone": "12"}), 400, "customer.phone", id="phone-short"),
    pytest.param(
        episode_body(customer={"phone": "not a phone"}), 400, "customer.phone", id="phone-words"
    ),
    pytest.param(
        episode_body(customer={"phone": "07700 900123"}), 400, "customer.phone", id="phone-invalid"
    ),
    pytest.param(episode_body(customer={"phone": "   "}), 400, "customer.phone", id="phone-spaces"),
    pytest.param(episode_body(customer={"phone": 12}), 400, "customer.phone", id="phone-number"),
    pytest.param(episode_body(customer={"phone": True}), 400, "customer.phone", id="phone-bool"),
    pytest.param(episode_body(customer={"phone": [PHONE]}), 400, "customer.phone", id="phone-list"),
    pytest.param(
        episode_body(customer={"phone": "0" * 41}), 400, "customer.phone", id="phone-too-long"
    ),
    pytest.param(
        episode_body(customer={"email": "dan at example"}), 400, "customer.email", id="email-no-at"
    ),
    pytest.param(
        episode_body(customer={"email": "dan@example"}), 400, "customer.email", id="email-no-dot"
    ),
    pytest.param(
        episode_body(customer={"email": "@example.com"}), 400, "customer.email", id="email-no-local"
    ),
    pytest.param(
        episode_body(customer={"email": "d an@example.com"}),
        400,
        "customer.email",
        id="email-space",
    ),
    pytest.param(
        episode_body(customer={"email": "a" * 250 + "@example.com"}),
        400,
        "customer.email",
        id="email-too-long",
    ),
    pytest.param(
        episode_body(customer={"phone": PHONE, "card": "c" * 65}),
        400,
        "customer.card",
        id="card-long",
    ),
    pytest.param(
        episode_body(customer={"phone": PHONE, "pos_id": "p" * 65}),
        400,
        "customer.pos_id",
        id="pos-id-long",
    ),
    pytest.param(
        episode_body(customer={"phone": PHONE, "name": "n" * 201}),
        400,
        "customer.name",
        id="name-long",
    ),
    pytest.param(
        episode_body(customer={"phone": PHONE, "name": {"first": "Dan"}}),
        400,
        "customer.name",
        id="name-dict",
    ),
    # kind
    pytest.param(episode_body(kind=DROP), 400, "kind", id="kind-missing"),
    pytest.param(episode_body(kind="teleport"), 400, "kind", id="kind-unknown"),
    pytest.param(episode_body(kind="VISIT"), 400, "kind", id="kind-wrong-case"),
    pytest.param(episode_body(kind=""), 400, "kind", id="kind-blank"),
    pytest.param(episode_body(kind=None), 400, "kind", id="kind-null"),
    pytest.param(episode_body(kind=7), 400, "kind", id="kind-number"),
    pytest.param(episode_body(kind=["visit"]), 400, "kind", id="kind-list"),
    pytest.param(episode_body(kind=LONG), 400, "kind", id="kind-long"),
    # occurred_at
    pytest.param(episode_body(occurred_at="yesterday"), 400, "occurred_at", id="when-words"),
    pytest.param(
        episode_body(occurred_at="2024-13-01T00:00:00Z"), 400, "occurred_at", id="when-month-13"
    ),
    pytest.param(
        episode_body(occurred_at="2024-02-30T00:00:00Z"), 400, "occurred_at", id="when-feb-30"
    ),
    pytest.param(episode_body(occurred_at=1714560000), 400, "occurred_at", id="when-epoch-number"),
    pytest.param(episode_body(occurred_at=""), 400, "occurred_at", id="when-blank"),
    pytest.param(episode_body(occurred_at=None), 400, "occurred_at", id="when-null"),
    pytest.param(episode_body(occurred_at={"t": 1}), 400, "occurred_at", id="when-dict"),
    pytest.param(
        episode_body(occurred_at="2024-05-01T12:00:00"), 400, "occurred_at", id="when-naive"
    ),
    pytest.param(
        episode_body(occurred_at="2999-01-01T00:00:00Z"), 400, "occurred_at", id="when-far-future"
    ),
    pytest.param(
        episode_body(occurred_at="1999-12-31T23:59:59Z"), 400, "occurred_at", id="when-before-2000"
    ),
    pytest.param(
        episode_body(occurred_at="0001-01-01T00:00:00+01:00"), 400, "occurred_at", id="when-year-1"
    ),
    pytest.param(
        episode_body(occurred_at="9999-12-31T23:59:59-01:00"),
        400,
        "occurred_at",
        id="when-year-9999",
    ),
    pytest.param(
        episode_body(occurred_at="2024-05-01T12:00:00+25:00"),
        400,
        "occurred_at",
        id="when-bad-offset",
    ),
    # location
    pytest.param(episode_body(location="nowhere"), 404, "location", id="location-unknown"),
    pytest.param(episode_body(location="elsewhere"), 404, "location", id="location-other-org"),
    pytest.param(episode_body(location="Main St!"), 400, "location", id="location-not-a-slug"),
    pytest.param(episode_body(location="l" * 61), 400, "location", id="location-too-long"),
    pytest.param(episode_body(location=["main-st"]), 400, "location", id="location-list"),
    pytest.param(episode_body(location=None), 400, "location", id="location-null"),
    # experience and rating
    pytest.param(episode_body(experience=3), 400, "experience", id="experience-3"),
    pytest.param(episode_body(experience=-3), 400, "experience", id="experience-minus-3"),
    pytest.param(episode_body(experience=2**70), 400, "experience", id="experience-huge"),
    pytest.param(episode_body(experience="good"), 400, "experience", id="experience-text"),
    pytest.param(episode_body(experience=1.5), 400, "experience", id="experience-float"),
    pytest.param(episode_body(experience=True), 400, "experience", id="experience-bool"),
    pytest.param(episode_body(experience=[1]), 400, "experience", id="experience-list"),
    pytest.param(
        episode_body(experience=1, rating={"scale": "stars5", "value": 4}),
        400,
        "experience",
        id="experience-and-rating",
    ),
    pytest.param(
        episode_body(rating={"scale": "stars10", "value": 3}),
        400,
        "rating.scale",
        id="rating-scale",
    ),
    pytest.param(
        episode_body(rating={"scale": None, "value": 3}),
        400,
        "rating.scale",
        id="rating-scale-null",
    ),
    pytest.param(episode_body(rating={"value": 3}), 400, "rating.scale", id="rating-scale-missing"),
    pytest.param(
        episode_body(rating={"scale": "stars5"}), 400, "rating.value", id="rating-value-missing"
    ),
    pytest.param(
        episode_body(rating={"scale": "stars5", "value": 0}), 400, "rating.value", id="stars-0"
    ),
    pytest.param(
        episode_body(rating={"scale": "stars5", "value": 6}), 400, "rating.value", id="stars-6"
    ),
    pytest.param(
        episode_body(rating={"scale": "score10", "value": 11}), 400, "rating.value", id="score-11"
    ),
    pytest.param(
        episode_body(rating={"scale": "score10", "value": -1}), 400, "rating.value", id="score-neg"
    ),
    pytest.param(
        episode_body(rating={"scale": "stars5", "value": "x"}),
        400,
        "rating.value",
        id="rating-text",
    ),
    pytest.param(
        episode_body(rating={"scale": "stars5", "value": 4.5}),
        400,
        "rating.value",
        id="rating-half",
    ),
    pytest.param(episode_body(rating=5), 400, "rating", id="rating-a-number"),
    pytest.param(episode_body(rating="stars5:4"), 400, "rating", id="rating-a-string"),
    pytest.param(episode_body(rating=[4]), 400, "rating", id="rating-a-list"),
    # touchpoints
    pytest.param(episode_body(touchpoints=["teleport"]), 400, "touchpoints[0]", id="tp-unknown"),
    pytest.param(
        episode_body(touchpoints=["wait", "teleport"]), 400, "touchpoints[1]", id="tp-second"
    ),
    pytest.param(episode_body(touchpoints=[5]), 400, "touchpoints[0]", id="tp-number"),
    pytest.param(episode_body(touchpoints=[None]), 400, "touchpoints[0]", id="tp-null"),
    pytest.param(episode_body(touchpoints=[["wait"]]), 400, "touchpoints[0]", id="tp-nested-list"),
    pytest.param(
        episode_body(touchpoints=[{"code": 5}]), 400, "touchpoints[0]", id="tp-code-number"
    ),
    pytest.param(
        episode_body(touchpoints=[{"code": "teleport"}]),
        400,
        "touchpoints[0]",
        id="tp-code-unknown",
    ),
    pytest.param(
        episode_body(touchpoints=[{"third_party": True}]),
        400,
        "touchpoints[0]",
        id="tp-code-missing",
    ),
    pytest.param(
        episode_body(touchpoints=[{"code": "parking_valet", "third_party": "yes"}]),
        400,
        "touchpoints[0]",
        id="tp-third-party-text",
    ),
    pytest.param(
        episode_body(touchpoints=[{"code": "parking_valet", "third_party": 1}]),
        400,
        "touchpoints[0]",
        id="tp-third-party-int",
    ),
    pytest.param(episode_body(touchpoints="wait"), 400, "touchpoints", id="tp-a-string"),
    pytest.param(episode_body(touchpoints={"code": "wait"}), 400, "touchpoints", id="tp-a-dict"),
    pytest.param(episode_body(touchpoints=["wait"] * 13), 400, "touchpoints", id="tp-too-many"),
    pytest.param(episode_body(touchpoints=["t" * 5000]), 400, "touchpoints[0]", id="tp-long-code"),
    # items
    pytest.param(episode_body(items=["latte"]), 400, "items[0]", id="item-a-string"),
    pytest.param(episode_body(items=[None]), 400, "items[0]", id="item-null"),
    pytest.param(episode_body(items=[{"name": "Latte"}, 5]), 400, "items[1]", id="item-second"),
    pytest.param(episode_body(items=[{"quantity": 1}]), 400, "items[0].name", id="item-no-name"),
    pytest.param(episode_body(items=[{"name": ""}]), 400, "items[0].name", id="item-blank-name"),
    pytest.param(
        episode_body(items=[{"name": "n" * 201}]), 400, "items[0].name", id="item-long-name"
    ),
    pytest.param(
        episode_body(items=[{"name": "Latte", "quantity": -1}]),
        400,
        "items[0].quantity",
        id="qty-neg",
    ),
    pytest.param(
        episode_body(items=[{"name": "Latte", "quantity": 0}]),
        400,
        "items[0].quantity",
        id="qty-zero",
    ),
    pytest.param(
        episode_body(items=[{"name": "Latte", "quantity": 10_001}]),
        400,
        "items[0].quantity",
        id="qty-huge",
    ),
    pytest.param(
        episode_body(items=[{"name": "Latte", "quantity": "lots"}]),
        400,
        "items[0].quantity",
        id="qty-text",
    ),
    pytest.param(
        episode_body(items=[{"name": "Latte", "price": "abc"}]),
        400,
        "items[0].price",
        id="price-text",
    ),
    pytest.param(
        episode_body(items=[{"name": "Latte", "price": "-1.00"}]),
        400,
        "items[0].price",
        id="price-neg",
    ),
    pytest.param(
        episode_body(items=[{"name": "Latte", "price": "1.234"}]),
        400,
        "items[0].price",
        id="price-3-decimals",
    ),
    pytest.param(
        episode_body(items=[{"name": "Latte", "price": 123456789012}]),
        400,
        "items[0].price",
        id="price-too-many-digits",
    ),
    pytest.param(
        episode_body(items=[{"name": "Latte", "price": "NaN"}]),
        400,
        "items[0].price",
        id="price-nan",
    ),
    pytest.param(
        episode_body(items=[{"name": "Latte", "price": "Infinity"}]),
        400,
        "items[0].price",
        id="price-infinity",
    ),
    pytest.param(
        episode_body(items=[{"name": "Latte", "price": "1e400"}]),
        400,
        "items[0].price",
        id="price-1e400",
    ),
    pytest.param(
        episode_body(items=[{"name": "Latte", "price": [1]}]),
        400,
        "items[0].price",
        id="price-list",
    ),
    pytest.param(episode_body(items={"name": "Latte"}), 400, "items", id="items-a-dict"),
    pytest.param(episode_body(items="Latte"), 400, "items", id="items-a-string"),
    pytest.param(episode_body(items=[{"name": "Latte"}] * 101), 400, "items", id="items-too-many"),
    # source, external_id, summary
    pytest.param(episode_body(source="fax"), 400, "source", id="source-unknown"),
    pytest.param(episode_body(source=""), 400, "source", id="source-blank"),
    pytest.param(episode_body(source=["pos"]), 400, "source", id="source-list"),
    pytest.param(episode_body(external_id="e" * 129), 400, "external_id", id="external-id-long"),
    pytest.param(episode_body(external_id=["a"]), 400, "external_id", id="external-id-list"),
    pytest.param(episode_body(external_id={"a": 1}), 400, "external_id", id="external-id-dict"),
    pytest.param(episode_body(summary="s" * 4001), 400, "summary", id="summary-long"),
    pytest.param(episode_body(summary={"text": "hi"}), 400, "summary", id="summary-dict"),
    pytest.param(episode_body(summary=None), 400, "summary", id="summary-null"),
]


def _string_fields(bad: str) -> list:
    """The same bad character in every string field, nested ones included."""
    return [
        ("customer.phone", episode_body(customer={"phone": f"07400{bad}123456"})),
        ("customer.email", episode_body(customer={"email": f"dan{bad}@example.com"})),
        ("customer.card", episode_body(customer={"card": f"CARD{bad}1"})),
        ("customer.pos_id", episode_body(customer={"pos_id": f"POS{bad}1"})),
        ("customer.name", episode_body(customer={"phone": PHONE, "name": f"Dan{bad}"})),
        ("customer.id", episode_body(customer={"id": f"1{bad}"})),
        ("kind", episode_body(kind=f"visit{bad}")),
        ("occurred_at", episode_body(occurred_at=f"2024-05-01T12:00:00{bad}Z")),
        ("location", episode_body(location=f"main-st{bad}")),
        ("experience", episode_body(experience=f"1{bad}")),
        ("rating.scale", episode_body(rating={"scale": f"stars5{bad}", "value": 4})),
        ("rating.value", episode_body(rating={"scale": "stars5", "value": f"4{bad}"})),
        ("touchpoints[0]", episode_body(touchpoints=[f"wait{bad}"])),
        ("touchpoints[0]", episode_body(touchpoints=[{"code": f"wait{bad}"}])),
        ("items[0].name", episode_body(items=[{"name": f"Latte{bad}"}])),
        ("items[0].quantity", episode_body(items=[{"name": "Latte", "quantity": f"1{bad}"}])),
        ("items[0].price", episode_body(items=[{"name": "Latte", "price": f"3.40{bad}"}])),
        ("source", episode_body(source=f"pos{bad}")),
        ("external_id", episode_body(external_id=f"T1{bad}")),
        ("summary", episode_body(summary=f"Cold latte{bad}")),
    ]


BAD_CHARACTER_CASES = [
    pytest.param(body, 400, field, id=f"{name}-{field}-{i}")
    for name, bad in (("nul", "\x00"), ("surrogate", "\ud800"))
    for i, (field, body) in enumerate(_string_fields(bad))
]


@pytest.mark.parametrize(("body", "status", "field"), FIELD_CASES + BAD_CHARACTER_CASES)
def test_a_bad_field_on_post_episodes_is_refused_naming_it_and_changes_nothing(
    api, known, other_location, body, status, field
):
    before = snapshot()

    response = post_json(api, EPISODES, body)
    assert_error(response, status, field)
    # The same with an Idempotency-Key: the refusal is not stored, the key is not burned.
    response = post_json(api, EPISODES, body, HTTP_IDEMPOTENCY_KEY="retry-1")
    assert_error(response, status, field)

    assert snapshot() == before
    assert (
        post_json(api, EPISODES, episode_body(), HTTP_IDEMPOTENCY_KEY="retry-1").status_code == 201
    )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({**episode_body(), "\x00": 1}, id="top-level-nul-key"),
        pytest.param({**episode_body(), "\ud800": 1}, id="top-level-surrogate-key"),
        pytest.param(episode_body(customer={"phone": PHONE, "\x00": "x"}), id="customer-nul-key"),
        pytest.param(
            episode_body(customer={"phone": PHONE, "\udfff": "x"}), id="customer-surr-key"
        ),
        pytest.param(
            episode_body(rating={"scale": "stars5", "value": 4, "\x00": 1}), id="rating-key"
        ),
        pytest.param(episode_body(touchpoints=[{"code": "wait", "\x00": True}]), id="tp-nul-key"),
        pytest.param(
            episode_body(touchpoints=[{"code": "wait", "\ud800": True}]), id="tp-surr-key"
        ),
        pytest.param(episode_body(items=[{"name": "Latte", "\x00": 1}]), id="item-nul-key"),
        pytest.param(episode_body(items=[{"name": "Latte", "\ud800\x00": 1}]), id="item-surr-key"),
    ],
)
def test_nul_or_surrogate_dict_keys_are_refused_or_dropped_never_stored(api, known, body):
    """Unknown keys are not part of the API: either refused with a 400 that changes nothing,
    or ignored, in which case nothing of them reaches the database."""
    before = snapshot()
    response = post_json(api, EPISODES, body)
    assert response.status_code in (201, 400), response.content[:500]
    if response.status_code == 400:
        assert_error(response, 400, ANY_FIELD)
        assert snapshot() == before
        return
    episode = Episode.objects.get(pk=response.json()["id"])
    stored = json.dumps([episode.touchpoints, episode.items, episode.summary])
    assert "\\u0000" not in stored
    assert "\\ud800" not in stored and "\\udfff" not in stored


def test_a_lone_surrogate_in_a_known_customers_name_does_not_reach_the_row(api, known):
    before = snapshot()
    response = post_json(
        api, EPISODES, episode_body(customer={"phone": "07400 111111", "name": "\ud800"})
    )
    assert_error(response, 400, "customer.name")
    assert snapshot() == before


# --- POST /episodes/: the body itself --------------------------------------------------------

DEEP = b'{"customer": ' + b"[" * 100_000 + b"]" * 100_000 + b', "kind": "visit"}'


@pytest.mark.parametrize(
    ("raw", "status", "field"),
    [
        pytest.param(b"not json", 400, "body", id="not-json"),
        pytest.param(b"{", 400, "body", id="truncated"),
        pytest.param(
            b'{"customer": {"phone": "07400 123456"}, "kind": "visit",}',
            400,
            "body",
            id="trailing-comma",
        ),
        pytest.param(b"\xff\xfe\xfa{}", 400, "body", id="invalid-utf8-prefix"),
        pytest.param(
            b'{"customer": {"phone": "07400 123456"}, "kind": "visit", "summary": "caf\xe9"}',
            400,
            "body",
            id="invalid-utf8-in-a-string",
        ),
        pytest.param(b'{"customer": {"id": NaN}, "kind": "visit"}', 400, "body", id="nan"),
        pytest.param(
            b'{"customer": {"id": Infinity}, "kind": "visit"}', 400, "body", id="infinity"
        ),
        pytest.param(
            b'{"customer": {"id": 1' + b"0" * 5000 + b'}, "kind": "visit"}',
            400,
            ANY_FIELD,
            id="5000-digit-number",
        ),
        pytest.param(DEEP, 400, ANY_FIELD, id="nested-100k-deep"),
        pytest.param(b"[]", 400, ANY_FIELD, id="an-array"),
        pytest.param(as_json([episode_body()]), 400, ANY_FIELD, id="an-array-of-episodes"),
        pytest.param(b"42", 400, ANY_FIELD, id="a-number"),
        pytest.param(b'"visit"', 400, ANY_FIELD, id="a-string"),
        pytest.param(b"null", 400, ANY_FIELD, id="null"),
        pytest.param(b"true", 400, ANY_FIELD, id="true"),
        pytest.param(b"", 400, "customer", id="empty-body"),
        pytest.param(b"{}", 400, "customer", id="empty-object"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_400_and_changes_nothing(
    api, known, raw, status, field
):
    before = snapshot()
    body = assert_error(post_raw(api, EPISODES, raw), status, field)
    if field is ANY_FIELD:
        assert body["errors"][0]["field"] in (None, "body"), body
    assert snapshot() == before


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "application/octet-stream",
    ],
)
def test_a_body_that_is_not_json_by_content_type_is_415_and_changes_nothing(
    api, known, content_type
):
    before = snapshot()
    response = post_raw(api, EPISODES, as_json(episode_body()), content_type=content_type)
    assert_error(response, 415, ANY_FIELD)
    assert snapshot() == before


def test_multipart_form_is_415_and_changes_nothing(api, known):
    before = snapshot()
    response = api.post(EPISODES, {"kind": "visit"}, format="multipart")
    assert_error(response, 415, ANY_FIELD)
    assert snapshot() == before


def test_a_body_over_the_documented_limit_is_413_and_changes_nothing(api, known):
    limit = django_settings.API_MAX_BODY_BYTES
    raw = as_json(episode_body(summary="x" * limit))
    assert len(raw) > limit
    before = snapshot()
    response = post_raw(api, EPISODES, raw)
    assert_error(response, 413, ANY_FIELD)
    assert snapshot() == before


def test_a_bulk_body_over_the_documented_limit_is_413_and_changes_nothing(api, known):
    limit = django_settings.API_MAX_BODY_BYTES
    item = episode_body(summary="y" * 3000)
    raw = as_json({"episodes": [item] * (limit // 3000 + 1)})
    assert len(raw) > limit
    before = snapshot()
    assert_error(post_raw(api, BULK, raw), 413, ANY_FIELD)
    assert snapshot() == before


def test_a_body_exactly_at_the_limit_is_accepted(api, known):
    limit = django_settings.API_MAX_BODY_BYTES
    raw = as_json(episode_body())
    raw += b" " * (limit - len(raw))  # whitespace after the object is still valid JSON
    assert len(raw) == limit
    assert post_raw(api, EPISODES, raw).status_code == 201


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("k" * 256, id="too-long"),
        pytest.param("", id="empty"),
        pytest.param("caf\u00e9", id="non-ascii-latin1"),
        pytest.param("caf\u00c3\u00a9", id="utf8-bytes-read-as-latin1"),
        pytest.param("a\tb", id="tab"),
        pytest.param("a\x00b", id="nul"),
        pytest.param("a\x7fb", id="del"),
    ],
)
@pytest.mark.parametrize("url", [EPISODES, BULK])
def test_a_bad_idempotency_key_header_is_400_and_changes_nothing(api, known, key, url):
    body = episode_body() if url == EPISODES else {"episodes": [episode_body()]}
    before = snapshot()
    response = post_json(api, url, body, HTTP_IDEMPOTENCY_KEY=key)
    assert_error(response, 400, "Idempotency-Key")
    assert snapshot() == before


def test_an_idempotency_key_of_255_printable_characters_is_fine(api, known):
    response = post_json(api, EPISODES, episode_body(), HTTP_IDEMPOTENCY_KEY="k" * 255)
    assert response.status_code == 201


# --- GET /customers/ -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param("phone=12", "phone", id="phone-short"),
        pytest.param("phone=not+a+phone", "phone", id="phone-words"),
        pytest.param("phone=07700+900123", "phone", id="phone-invalid"),
        pytest.param("phone=" + "0" * 41, "phone", id="phone-long"),
        pytest.param("phone=07400%00123456", "phone", id="phone-nul"),
        pytest.param("phone=%00", "phone", id="phone-only-nul"),
        pytest.param("email=dan+at+example", "email", id="email-bad"),
        pytest.param("email=dan%00@example.com", "email", id="email-nul"),
        pytest.param("card=C%00", "card", id="card-nul"),
        pytest.param("pos_id=" + "p" * 65, "pos_id", id="pos-id-long"),
        pytest.param("q=Da%00n", "q", id="q-nul"),
        pytest.param("q=" + "q" * 101, "q", id="q-long"),
    ],
)
def test_bad_customer_search_params_are_400_naming_the_param(api, known, query, field):
    before = snapshot()
    assert_error(api.get(f"{CUSTOMERS}?{query}"), 400, field)
    assert snapshot() == before


def test_undecodable_bytes_in_a_search_param_are_not_a_500(api, known):
    response = api.get(f"{CUSTOMERS}?phone=%FF%FE&q=%ED%A0%80")
    assert response.status_code in (200, 400), response.content[:500]


# --- GET /customers/{id}/timeline/ -----------------------------------------------------------


def _timeline(customer_id: int) -> str:
    return f"{CUSTOMERS}{customer_id}/timeline/"


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("garbage!", id="not-base64"),
        pytest.param("%00", id="nul"),
        pytest.param("%C3%A9", id="non-ascii"),
        pytest.param(cursor_of(b"not json"), id="not-json"),
        pytest.param(cursor_of(b"\xff\xfe\xfa"), id="not-utf8"),
        pytest.param(cursor_of(b"{}"), id="an-object"),
        pytest.param(cursor_of(b"null"), id="null"),
        pytest.param(cursor_of(b'"ab"'), id="a-string"),
        pytest.param(cursor_of(b"[1, 2, 3]"), id="three-items"),
        pytest.param(cursor_of(b"[1, 2]"), id="number-time"),
        pytest.param(cursor_of(b'["yesterday", 5]'), id="bad-time"),
        pytest.param(cursor_of(b'["2024-01-01T00:00:00", 5]'), id="naive-time"),
        pytest.param(cursor_of(b'["2024-01-01T00:00:00+00:00", -1]'), id="negative-id"),
        pytest.param(cursor_of(b'["2024-01-01T00:00:00+00:00", 0]'), id="zero-id"),
        pytest.param(cursor_of(b'["2024-01-01T00:00:00+00:00", 1.5]'), id="float-id"),
        pytest.param(cursor_of(b'["2024-01-01T00:00:00+00:00", "5"]'), id="text-id"),
        pytest.param(cursor_of(b'["2024-01-01T00:00:00+00:00", 1e400]'), id="infinite-id"),
        pytest.param(
            cursor_of(b'["2024-01-01T00:00:00+00:00", 99999999999999999999]'), id="huge-id"
        ),
        pytest.param(cursor_of(b"[" * 50_000 + b"]" * 50_000), id="nested-50k-deep"),
    ],
)
def test_a_bad_timeline_cursor_is_400_naming_cursor(api, known, cursor):
    response = api.get(f"{_timeline(known.customer_id)}?cursor={cursor}")
    assert_error(response, 400, "cursor")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'["0001-01-01T00:00:00+14:00", 5]', id="year-1"),
        pytest.param(b'["9999-12-31T23:59:59-23:59", 5]', id="year-9999-offset-23h59"),
        pytest.param(b'["2024-01-01T00:00:00+00:00", true]', id="id-true"),
        pytest.param(b'["2024-01-01T00:00:00+20:00", 5]', id="offset-20h"),
    ],
)
def test_an_odd_but_well_formed_cursor_is_never_a_500(api, known, raw):
    response = api.get(f"{_timeline(known.customer_id)}?cursor={cursor_of(raw)}")
    assert response.status_code in (200, 400), response.content[:500]


@pytest.mark.parametrize(
    "page_size",
    [
        pytest.param("0", id="zero"),
        pytest.param("101", id="101"),
        pytest.param("abc", id="text"),
        pytest.param("-1", id="negative"),
        pytest.param("1.5", id="fraction"),
        pytest.param("", id="blank"),
        pytest.param("%00", id="nul"),
        pytest.param("%C2%B2", id="superscript-two"),
        pytest.param("%D9%A1%D9%A0%D9%A0%D9%A0", id="arabic-indic-1000"),
        pytest.param("9" * 5000, id="5000-digits"),
    ],
)
def test_a_bad_page_size_is_400_naming_page_size(api, known, page_size):
    response = api.get(f"{_timeline(known.customer_id)}?page_size={page_size}")
    assert_error(response, 400, "page_size")


@pytest.mark.parametrize("page_size", ["1", "100"])
def test_page_size_bounds_are_accepted(api, known, page_size):
    assert api.get(f"{_timeline(known.customer_id)}?page_size={page_size}").status_code == 200


# --- PATCH /customers/{id}/ ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"notes": "n" * 2001}, "notes", id="notes-long"),
        pytest.param({"notes": "nut\x00allergy"}, "notes", id="notes-nul"),
        pytest.param({"notes": "nut\ud800allergy"}, "notes", id="notes-surrogate"),
        pytest.param({"notes": ["a"]}, "notes", id="notes-list"),
        pytest.param({"notes": None}, "notes", id="notes-null"),
        pytest.param({"name": "n" * 201}, "name", id="name-long"),
        pytest.param({"name": "Da\x00na"}, "name", id="name-nul"),
        pytest.param({"name": "Da\udc00na"}, "name", id="name-surrogate"),
        pytest.param({"name": {"first": "Dana"}}, "name", id="name-dict"),
        pytest.param({"name": "Dana", "notes": "n" * 2001}, "notes", id="good-name-bad-notes"),
    ],
)
def test_a_bad_customer_patch_is_400_naming_the_field_and_changes_nothing(api, known, body, field):
    before = snapshot()
    response = api.patch(
        f"{CUSTOMERS}{known.customer_id}/", data=as_json(body), content_type="application/json"
    )
    assert_error(response, 400, field)
    assert snapshot() == before


@pytest.mark.parametrize("raw", [b"[]", b"42", b"not json", b'"notes"'])
def test_a_customer_patch_body_that_is_not_an_object_is_400_and_changes_nothing(api, known, raw):
    before = snapshot()
    response = api.patch(
        f"{CUSTOMERS}{known.customer_id}/", data=raw, content_type="application/json"
    )
    body = assert_error(response, 400, ANY_FIELD)
    assert body["errors"][0]["field"] in (None, "body"), body
    assert snapshot() == before


def test_a_customer_patch_as_text_is_415_and_changes_nothing(api, known):
    before = snapshot()
    response = api.patch(
        f"{CUSTOMERS}{known.customer_id}/", data=b'{"notes": "x"}', content_type="text/plain"
    )
    assert_error(response, 415, ANY_FIELD)
    assert snapshot() == before


def test_a_customer_patch_cannot_touch_the_narrative_state(api, known):
    before = Customer.objects.values("visit_count", "last_experience", "episode_count").get(
        pk=known.customer_id
    )
    response = api.patch(
        f"{CUSTOMERS}{known.customer_id}/",
        data=as_json({"visit_count": 99, "last_experience": -2, "episode_count": 0}),
        content_type="application/json",
    )
    assert response.status_code in (200, 400), response.content[:500]
    after = Customer.objects.values("visit_count", "last_experience", "episode_count").get(
        pk=known.customer_id
    )
    assert after == before


# --- POST /episodes/{id}/experience/ ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"experience": 3}, "experience", id="three"),
        pytest.param({"experience": -3}, "experience", id="minus-three"),
        pytest.param({"experience": 2**70}, "experience", id="huge"),
        pytest.param({"experience": "bad"}, "experience", id="text"),
        pytest.param({"experience": 1.5}, "experience", id="float"),
        pytest.param({"experience": "1\x00"}, "experience", id="nul"),
        pytest.param({}, "experience", id="missing"),
        pytest.param({"reason": "because"}, "experience", id="only-reason"),
        pytest.param({"experience": 1, "reason": "r" * 501}, "reason", id="reason-long"),
        pytest.param({"experience": 1, "reason": "r\x00"}, "reason", id="reason-nul"),
        pytest.param({"experience": 1, "reason": "r\ud800"}, "reason", id="reason-surrogate"),
        pytest.param({"experience": 1, "reason": ["r"]}, "reason", id="reason-list"),
    ],
)
def test_a_bad_experience_correction_is_400_and_changes_nothing(api, known, body, field):
    before = snapshot()
    response = post_json(api, f"{EPISODES}{known.pk}/experience/", body)
    assert_error(response, 400, field)
    assert snapshot() == before


@pytest.mark.parametrize("raw", [b"[]", b"3", b"nope"])
def test_an_experience_correction_body_that_is_not_an_object_is_400(api, known, raw):
    before = snapshot()
    response = post_raw(api, f"{EPISODES}{known.pk}/experience/", raw)
    body = assert_error(response, 400, ANY_FIELD)
    assert body["errors"][0]["field"] in (None, "body"), body
    assert snapshot() == before


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/episodes/99999999999999999999999/",
        "/api/v1/episodes/99999999999999999999999/experience/",
        "/api/v1/customers/99999999999999999999999/",
        "/api/v1/customers/99999999999999999999999/timeline/",
        "/api/v1/customers/9223372036854775808/",
    ],
)
def test_an_id_beyond_bigint_in_the_url_is_404_not_500(api, known, url):
    before = snapshot()
    if url.endswith("experience/"):
        response = post_json(api, url, {"experience": 1})
    else:
        response = api.get(url)
    assert_error(response, 404, ANY_FIELD)
    assert snapshot() == before


# --- POST /episodes/bulk/ --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "field"),
    [
        pytest.param({}, "episodes", id="no-episodes"),
        pytest.param({"episodes": None}, "episodes", id="episodes-null"),
        pytest.param({"episodes": "x"}, "episodes", id="episodes-a-string"),
        pytest.param({"episodes": episode_body()}, "episodes", id="episodes-an-object"),
        pytest.param({"episodes": 5}, "episodes", id="episodes-a-number"),
        pytest.param({"episodes": []}, "episodes", id="episodes-empty"),
        pytest.param({"episodes": [episode_body()] * 1001}, "episodes", id="1001-episodes"),
        pytest.param({"episodes": [episode_body(), 5]}, "episodes[1]", id="an-item-not-an-object"),
        pytest.param({"episodes": [episode_body(), "x"]}, "episodes[1]", id="an-item-a-string"),
    ],
)
def test_a_bad_bulk_envelope_is_400_and_changes_nothing(api, known, value, field):
    before = snapshot()
    response = post_json(api, BULK, value)
    assert_error(response, 400, field)
    response = post_json(api, BULK, value, HTTP_IDEMPOTENCY_KEY="bulk-retry")
    assert_error(response, 400, field)
    assert snapshot() == before


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[]", id="an-array"),
        pytest.param(as_json([episode_body()]), id="an-array-of-episodes"),
        pytest.param(b"42", id="a-number"),
        pytest.param(b"null", id="null"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"\xff{}", id="invalid-utf8"),
        pytest.param(DEEP, id="nested-100k-deep"),
    ],
)
def test_a_bulk_body_that_is_not_an_object_is_400_and_changes_nothing(api, known, raw):
    before = snapshot()
    body = assert_error(post_raw(api, BULK, raw), 400, ANY_FIELD)
    assert body["errors"][0]["field"] in (None, "body", "episodes"), body
    assert snapshot() == before


def test_a_bulk_as_text_is_415(api, known):
    before = snapshot()
    response = post_raw(
        api, BULK, as_json({"episodes": [episode_body()]}), content_type="text/plain"
    )
    assert_error(response, 415, ANY_FIELD)
    assert snapshot() == before


BULK_MIX = [
    ({"customer": {"phone": "07400 200001"}, "kind": "visit"}, None),
    ({"customer": {"phone": "12"}, "kind": "visit"}, "customer.phone"),
    ({"customer": {"phone": "07400 200002"}, "kind": "visit", "experience": 5}, "experience"),
    ({"customer": {"phone": "07400 200003"}, "kind": "teleport"}, "kind"),
    ({"customer": {"phone": "07400 200004"}, "kind": "visit", "location": "nowhere"}, "location"),
    (
        {"customer": {"phone": "07400 200005"}, "kind": "visit", "touchpoints": ["teleport"]},
        "touchpoints[0]",
    ),
    ({"customer": {"id": 999_999_999}, "kind": "visit"}, "customer.id"),
    (
        {
            "customer": {"phone": "07400 200006"},
            "kind": "visit",
            "occurred_at": "1999-01-01T00:00Z",
        },
        "occurred_at",
    ),
    ({"customer": {"phone": "07400 200007"}, "kind": "visit", "summary": "a\x00b"}, "summary"),
    (
        {
            "customer": {"phone": "07400 200008"},
            "kind": "visit",
            "rating": {"scale": "stars5", "value": 9},
        },
        "rating.value",
    ),
    (
        {
            "customer": {"email": "Good@Example.com"},
            "kind": "order",
            "items": [{"name": "Latte", "quantity": 1, "price": "3.40"}],
        },
        None,
    ),
    (
        {
            "customer": {"phone": "07400 200009"},
            "kind": "visit",
            "items": [{"name": "L", "quantity": -1}],
        },
        "items[0].quantity",
    ),
    (
        {
            "customer": {"phone": "07400 200010"},
            "kind": "visit",
            "experience": 1,
            "rating": {"scale": "stars5", "value": 3},
        },
        "experience",
    ),
    ({"customer": {}, "kind": "visit"}, "customer"),
    ({"kind": "visit"}, "customer"),
    ({"customer": {"email": "not an email"}, "kind": "visit"}, "customer.email"),
    (
        {"customer": {"phone": "07400 200011"}, "kind": "visit", "external_id": "e" * 129},
        "external_id",
    ),
]


def test_a_bulk_mix_of_good_and_bad_items_creates_the_good_and_reports_each_bad_field(api, known):
    before = snapshot()
    response = post_json(api, BULK, {"episodes": [item for item, _ in BULK_MIX]})

    assert response.status_code == 200, response.content[:1000]
    body = response.json()
    good = sum(field is None for _, field in BULK_MIX)
    assert (body["created"], body["duplicates"], body["failed"]) == (good, 0, len(BULK_MIX) - good)
    assert len(body["results"]) == len(BULK_MIX)
    for index, ((_, field), result) in enumerate(zip(BULK_MIX, body["results"], strict=True)):
        assert result["index"] == index
        if field is None:
            assert result["status"] == "created", result
            assert Episode.objects.filter(pk=result["episode"]["id"]).exists()
        else:
            assert result["status"] == "error", result
            assert "episode" not in result
            assert result["errors"][0]["field"] == field, (index, result)

    after = snapshot()
    assert len(after["episodes"]) == len(before["episodes"]) + good
    assert len(after["customers"]) == len(before["customers"]) + good
    # The bad items' identifiers were not learned.
    assert set(Identifier.objects.values_list("value", flat=True)) == {
        "+447400111111",
        "+447400200001",
        "good@example.com",
    }


@pytest.mark.parametrize("idempotency_key", [None, "bulk-surrogates"])
def test_a_bulk_item_with_a_surrogate_is_reported_in_place(api, known, idempotency_key):
    items = [
        episode_body(),
        episode_body(kind="visit\ud800"),
        episode_body(source="\udfff"),
        episode_body(summary="x\ud800"),
        episode_body(rating={"scale": "\ud800", "value": 3}),
    ]
    extra = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}
    response = post_json(api, BULK, {"episodes": items}, **extra)
    assert response.status_code == 200, response.content[:1000]
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created", "error", "error", "error", "error"]
    assert [r["errors"][0]["field"] for r in results[1:]] == [
        "kind",
        "source",
        "summary",
        "rating.scale",
    ]


def test_a_bulk_never_answers_5xx_after_writing_its_good_items(api, known):
    """A POS that gets a 5xx retries the whole batch: if the good items were already written
    that retry duplicates them (invariant 1). A 5xx must mean nothing was written."""
    api.raise_request_exception = False
    before = snapshot()
    items = [episode_body(), episode_body(kind="visit\ud800")]
    response = post_json(api, BULK, {"episodes": items})
    if response.status_code >= 500:
        assert snapshot() == before, "a 5xx answer, yet the good item was written"
    else:
        assert response.status_code == 200


# --- never a 500: fuzzing --------------------------------------------------------------------

ODD_CHARACTERS = ["\x00", "\ud800", "\udfff", "\u2028", "\ufeff", "é", "😀", "'", '"', "\\"]
any_text = st.text(st.one_of(st.characters(), st.sampled_from(ODD_CHARACTERS)), max_size=12)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=10,
)


def _maybe(valid):
    return st.one_of(valid, json_values)


def _maybe_text(*choices: str):
    """A valid string, the same with an odd character in it, or any JSON value."""
    valid = st.sampled_from(choices)
    spoiled = st.tuples(valid, st.sampled_from(ODD_CHARACTERS)).map("".join)
    return st.one_of(valid, spoiled, json_values)


customer_refs = _maybe(
    st.fixed_dictionaries(
        {},
        optional={
            "id": _maybe(st.integers(min_value=-2, max_value=10**20)),
            "phone": _maybe_text("07400 123456", "+1 415 555 2671", "12", ""),
            "email": _maybe_text("a@b.co", "A@B.CO", "bad", ""),
            "card": _maybe_text("C1", " C1 ", ""),
            "pos_id": _maybe_text("P1", ""),
            "name": _maybe_text("Dan", "Latte"),
        },
    )
)
episode_shaped = st.fixed_dictionaries(
    {},
    optional={
        "customer": customer_refs,
        "kind": _maybe_text("visit", "order", "complaint", "compliment", "recovery"),
        "occurred_at": _maybe_text(
            "2024-05-01T12:00:00Z",
            "2024-05-01T12:00:00",
            "2999-01-01T00:00:00Z",
            "0001-01-01T00:00:00+14:00",
        ),
        "location": _maybe_text("main-st", "harbour-rd", "elsewhere", "nowhere"),
        "experience": _maybe(st.integers(min_value=-3, max_value=3)),
        "rating": _maybe(
            st.fixed_dictionaries(
                {
                    "scale": _maybe_text("stars5", "score10"),
                    "value": _maybe(st.integers(min_value=-1, max_value=11)),
                }
            )
        ),
        "touchpoints": _maybe(
            st.lists(
                _maybe(
                    st.sampled_from(["wait", "staff", "parking_valet"])
                    | st.fixed_dictionaries(
                        {"code": _maybe_text("wait", "delivery")},
                        optional={"third_party": _maybe(st.booleans())},
                    )
                ),
                max_size=14,
            )
        ),
        "items": _maybe(
            st.lists(
                _maybe(
                    st.fixed_dictionaries(
                        {"name": _maybe_text("Latte", "Almond-milk latte")},
                        optional={
                            "quantity": _maybe(st.integers(min_value=-1, max_value=10_001)),
                            "price": _maybe(st.sampled_from(["3.40", "-1", "1e400", "NaN", 3.4])),
                        },
                    )
                ),
                max_size=3,
            )
        ),
        "source": _maybe_text("pos", "staff", "api", "import"),
        "external_id": _maybe(any_text),
        "summary": _maybe(any_text),
    },
)

FUZZ = hypothesis_settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.django_db
@FUZZ
@given(value=st.one_of(episode_shaped, json_values))
def test_fuzzed_json_on_post_episodes_is_never_a_500(api, known, value):
    response = post_json(api, EPISODES, value)
    assert response.status_code < 500, response.content[:500]
    assert response.status_code in (200, 201, 400, 404, 409, 422), response.content[:500]


@pytest.mark.django_db
@FUZZ
@given(
    value=st.one_of(
        st.fixed_dictionaries({"episodes": st.lists(episode_shaped, max_size=5)}),
        st.fixed_dictionaries({"episodes": json_values}),
        json_values,
    )
)
def test_fuzzed_json_on_post_bulk_is_never_a_500(api, known, value):
    response = post_json(api, BULK, value)
    assert response.status_code < 500, response.content[:500]


@pytest.mark.django_db
@FUZZ
@given(raw=st.binary(max_size=300), url=st.sampled_from([EPISODES, BULK]))
def test_random_bytes_are_never_a_500(api, known, raw, url):
    response = post_raw(api, url, raw)
    assert response.status_code < 500, response.content[:500]
    assert response.status_code in (200, 201, 400), response.content[:500]

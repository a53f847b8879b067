"""Invariant 4: a key or a staff member sees only its own organization (and, where scoped,
location). Another tenant's object answers 404 — never 403, never the data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.http import StreamingHttpResponse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey, Location, Role
from accounts.services import create_api_key, revoke_api_key
from accounts.tenancy import SESSION_LOCATION_KEY, SESSION_ORG_KEY
from cxcore.models import (
    Customer,
    Episode,
    ExperienceCorrection,
    IdempotencyRecord,
    Identifier,
)
from cxcore.services import EpisodeInput, record_episode
from tests.conftest import key_client
from tests.factories import UserFactory

SECRET_NAME = "Secret Sam"
SECRET_SUMMARY = "Rival's private note about the valet"
SECRET_PHONE = "+447400999999"


def post_json(client, url, value, **extra):
    return client.post(url, data=json.dumps(value), content_type="application/json", **extra)


def patch_json(client, url, value):
    return client.patch(url, data=json.dumps(value), content_type="application/json")


def snapshot() -> dict:
    return {
        "episodes": list(Episode.objects.order_by("pk").values()),
        "customers": list(Customer.objects.order_by("pk").values()),
        "identifiers": Identifier.objects.count(),
        "idempotency": IdempotencyRecord.objects.count(),
        "corrections": ExperienceCorrection.objects.count(),
    }


def session_client(user) -> APIClient:
    client = APIClient()  # does not enforce CSRF, like a session-authenticated API test should
    client.force_login(user)
    return client


def assert_not_found(response, field=None, *, check_leak=True) -> None:
    assert response.status_code == 404, (response.status_code, response.content[:500])
    if response.request["REQUEST_METHOD"] == "HEAD":
        return
    body = response.json()
    assert body["error"] == "not_found", body
    if field is not None:
        assert body["errors"][0]["field"] == field, body
    if check_leak:
        assert_no_leak(response)


def assert_no_leak(response) -> None:
    content = response.content.decode("utf-8", "replace")
    for secret in (SECRET_NAME, SECRET_SUMMARY, SECRET_PHONE, "elsewhere", "Rival"):
        assert secret not in content, (secret, content[:500])


@pytest.fixture
def theirs(other_org, other_location):
    """Another organization's customer, with an episode, a phone and a private note."""
    return record_episode(
        organization=other_org,
        data=EpisodeInput(
            kind="complaint",
            identifiers={"phone": SECRET_PHONE},
            name=SECRET_NAME,
            summary=SECRET_SUMMARY,
            location=other_location,
            experience=-2,
            occurred_at=timezone.now() - timedelta(days=1),
        ),
    ).episode


@pytest.fixture
def ours(org, main_st, harbour):
    """Our customer, last seen at Harbour Rd."""
    return record_episode(
        organization=org,
        data=EpisodeInput(
            kind="visit",
            identifiers={"phone": "07400 111111"},
            name="Dana",
            location=harbour,
            experience=1,
            occurred_at=timezone.now() - timedelta(days=2),
        ),
    ).episode


# Every way into the organization: an org key, a key limited to Main St, and session logins.
ACTORS = ["org_key", "till_key", "owner_session", "manager_session", "staff_session"]


@pytest.fixture(params=ACTORS)
def actor(request) -> APIClient:
    kind = request.param
    if kind.endswith("_key"):
        return key_client(request.getfixturevalue(kind))
    return session_client(request.getfixturevalue(kind.removesuffix("_session")))


# --- another organization's objects are 404 on every endpoint --------------------------------


def test_another_orgs_customer_is_404_on_every_endpoint(actor, theirs, ours):
    customer_id = theirs.customer_id
    before = snapshot()

    assert_not_found(actor.get(f"/api/v1/customers/{customer_id}/"))
    assert_not_found(actor.head(f"/api/v1/customers/{customer_id}/"))
    assert_not_found(patch_json(actor, f"/api/v1/customers/{customer_id}/", {"notes": "mine now"}))
    assert_not_found(actor.get(f"/api/v1/customers/{customer_id}/timeline/"))
    assert_not_found(actor.get(f"/api/v1/customers/{customer_id}/timeline/?page_size=1"))

    assert snapshot() == before


def test_another_orgs_episode_is_404_on_every_endpoint(actor, theirs, ours):
    before = snapshot()

    assert_not_found(actor.get(f"/api/v1/episodes/{theirs.pk}/"))
    assert_not_found(actor.head(f"/api/v1/episodes/{theirs.pk}/"))
    assert_not_found(
        post_json(actor, f"/api/v1/episodes/{theirs.pk}/experience/", {"experience": 2})
    )
    # Even with a body that is itself invalid: the object is not there, so nothing to validate.
    response = post_json(actor, f"/api/v1/episodes/{theirs.pk}/experience/", {"experience": 9})
    assert_not_found(response)

    assert snapshot() == before
    theirs.refresh_from_db()
    assert theirs.experience == -2


def test_another_orgs_ids_answer_exactly_like_ids_that_do_not_exist(actor, theirs, ours):
    """No existence oracle: the 404 for someone else's object is the 404 for nothing at all."""
    missing_customer = Customer.objects.order_by("-pk").values_list("pk", flat=True)[0] + 1000
    missing_episode = Episode.objects.order_by("-pk").values_list("pk", flat=True)[0] + 1000
    pairs = [
        (f"/api/v1/customers/{theirs.customer_id}/", f"/api/v1/customers/{missing_customer}/"),
        (
            f"/api/v1/customers/{theirs.customer_id}/timeline/",
            f"/api/v1/customers/{missing_customer}/timeline/",
        ),
        (f"/api/v1/episodes/{theirs.pk}/", f"/api/v1/episodes/{missing_episode}/"),
    ]
    for theirs_url, missing_url in pairs:
        a, b = actor.get(theirs_url), actor.get(missing_url)
        assert (a.status_code, a.json()) == (b.status_code, b.json())
    a = post_json(
        actor, "/api/v1/episodes/", {"customer": {"id": theirs.customer_id}, "kind": "visit"}
    )
    b = post_json(
        actor, "/api/v1/episodes/", {"customer": {"id": missing_customer}, "kind": "visit"}
    )
    assert (a.status_code, a.json()) == (b.status_code, b.json())


def test_logging_an_episode_for_another_orgs_customer_is_404_naming_customer_id(
    actor, theirs, ours
):
    before = snapshot()
    body = {"customer": {"id": theirs.customer_id}, "kind": "visit", "summary": "hello"}

    assert_not_found(post_json(actor, "/api/v1/episodes/", body), field="customer.id")
    response = post_json(actor, "/api/v1/episodes/", body, HTTP_IDEMPOTENCY_KEY="tenancy-1")
    assert_not_found(response, field="customer.id")

    assert snapshot() == before


def test_a_bulk_item_for_another_orgs_customer_fails_alone(actor, theirs, ours):
    before = snapshot()
    items = [
        {"customer": {"id": ours.customer_id}, "kind": "visit"},
        {"customer": {"id": theirs.customer_id}, "kind": "visit"},
        {"customer": {"id": theirs.customer_id}, "kind": "complaint", "experience": -2},
    ]
    response = post_json(actor, "/api/v1/episodes/bulk/", {"episodes": items})

    assert response.status_code == 200, response.content[:500]
    body = response.json()
    assert (body["created"], body["failed"]) == (1, 2)
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["created", "error", "error"]
    for result in body["results"][1:]:
        assert result["errors"][0]["field"] == "customer.id"
        assert result["errors"][0]["code"] == "not_found"
        assert "episode" not in result
    assert_no_leak(response)
    assert Episode.objects.filter(customer_id=theirs.customer_id).count() == 1
    assert Episode.objects.count() == len(before["episodes"]) + 1


def test_searching_another_orgs_phone_or_name_finds_nothing(actor, theirs, ours):
    for query in (
        f"phone={SECRET_PHONE.replace('+', '%2B')}",
        "phone=07400999999",
        "q=Secret",
        "q=Sam",
    ):
        response = actor.get(f"/api/v1/customers/?{query}")
        assert response.status_code == 200, response.content[:500]
        assert response.json()["results"] == [], query
        assert_no_leak(response)


def test_listing_customers_shows_only_our_own(actor, theirs, ours):
    response = actor.get("/api/v1/customers/")
    assert response.status_code == 200
    ids = {c["id"] for c in response.json()["results"]}
    assert ids == {ours.customer_id}
    assert_no_leak(response)


def test_locations_list_only_our_own(api, till, theirs, ours):
    response = api.get("/api/v1/locations/")
    assert response.status_code == 200
    assert {loc["slug"] for loc in response.json()["results"]} == {"main-st", "harbour-rd"}
    assert_no_leak(response)
    # A key limited to Main St sees only Main St.
    response = till.get("/api/v1/locations/")
    assert {loc["slug"] for loc in response.json()["results"]} == {"main-st"}


def test_the_other_org_cannot_reach_our_objects_either(outsider_api, outsider, ours):
    for client in (outsider_api, session_client(outsider)):
        before = snapshot()
        assert_not_found(client.get(f"/api/v1/customers/{ours.customer_id}/"))
        assert_not_found(client.get(f"/api/v1/customers/{ours.customer_id}/timeline/"))
        assert_not_found(
            patch_json(client, f"/api/v1/customers/{ours.customer_id}/", {"name": "x"})
        )
        assert_not_found(client.get(f"/api/v1/episodes/{ours.pk}/"))
        assert_not_found(
            post_json(client, f"/api/v1/episodes/{ours.pk}/experience/", {"experience": -2})
        )
        response = post_json(
            client, "/api/v1/episodes/", {"customer": {"id": ours.customer_id}, "kind": "visit"}
        )
        assert_not_found(response, field="customer.id")
        response = client.get("/api/v1/customers/?phone=%2B447400111111")
        assert response.json()["results"] == []
        assert snapshot() == before


def test_logging_at_another_orgs_location_is_404_naming_location(actor, theirs, ours):
    before = snapshot()
    body = {"customer": {"phone": "07400 123456"}, "kind": "visit", "location": "elsewhere"}
    response = post_json(actor, "/api/v1/episodes/", body)
    # The message echoes the slug the client sent; otherwise it is the 404 for no such slug.
    assert_not_found(response, field="location", check_leak=False)
    missing = post_json(actor, "/api/v1/episodes/", {**body, "location": "nowhere"})
    assert response.content.replace(b"elsewhere", b"nowhere") == missing.content
    assert snapshot() == before


def test_a_session_cannot_choose_another_orgs_organization_or_location(owner, theirs, ours):
    client = session_client(owner)
    session = client.session
    session[SESSION_ORG_KEY] = theirs.organization_id
    session[SESSION_LOCATION_KEY] = theirs.location_id
    session.save()

    assert_not_found(client.get(f"/api/v1/customers/{theirs.customer_id}/"))
    assert client.get(f"/api/v1/customers/{ours.customer_id}/").status_code == 200
    response = post_json(
        client, "/api/v1/episodes/", {"customer": {"phone": "07400 123456"}, "kind": "visit"}
    )
    assert response.status_code == 201, response.content[:500]
    episode = Episode.objects.get(pk=response.json()["id"])
    assert episode.organization_id == ours.organization_id
    assert episode.location_id != theirs.location_id
    assert Customer.objects.get(pk=episode.customer_id).organization_id == ours.organization_id


# --- location scope: keys and staff limited to Main St ---------------------------------------

SCOPED = ["till_key", "staff_session", "manager_session"]


@pytest.fixture(params=SCOPED)
def scoped(request) -> APIClient:
    kind = request.param
    if kind.endswith("_key"):
        return key_client(request.getfixturevalue(kind))
    return session_client(request.getfixturevalue(kind.removesuffix("_session")))


def test_a_location_scoped_actor_cannot_log_at_another_location(scoped, ours):
    before = snapshot()
    body = {"customer": {"phone": "07400 123456"}, "kind": "visit", "location": "harbour-rd"}
    assert_not_found(post_json(scoped, "/api/v1/episodes/", body), field="location")
    response = post_json(scoped, "/api/v1/episodes/bulk/", {"episodes": [body]})
    assert response.status_code == 200
    result = response.json()["results"][0]
    assert result["status"] == "error"
    assert result["errors"][0]["field"] == "location"
    assert snapshot() == before


def test_a_location_scoped_actor_logs_at_its_own_location_by_default(scoped, ours):
    response = post_json(
        scoped, "/api/v1/episodes/", {"customer": {"phone": "07400 111111"}, "kind": "visit"}
    )
    assert response.status_code == 201, response.content[:500]
    assert response.json()["location"] == "main-st"
    response = post_json(
        scoped,
        "/api/v1/episodes/",
        {"customer": {"id": ours.customer_id}, "kind": "order", "location": "main-st"},
    )
    assert response.status_code == 201, response.content[:500]
    assert response.json()["location"] == "main-st"


def test_a_location_scoped_actor_reads_the_whole_org_narrative(scoped, ours):
    """The experience is never left at the counter: Main St sees what happened at Harbour Rd."""
    response = scoped.get(f"/api/v1/customers/{ours.customer_id}/timeline/")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(e["id"], e["location"]) for e in results] == [(ours.pk, "harbour-rd")]
    response = scoped.get(f"/api/v1/episodes/{ours.pk}/")
    assert response.status_code == 200
    assert response.json()["location"] == "harbour-rd"
    response = scoped.get("/api/v1/customers/?phone=07400111111")
    assert [c["id"] for c in response.json()["results"]] == [ours.customer_id]


def test_a_staff_session_pointing_at_a_forbidden_location_falls_back_to_its_own(
    staff, harbour, ours
):
    client = session_client(staff)
    session = client.session
    session[SESSION_LOCATION_KEY] = harbour.pk
    session.save()
    response = post_json(
        client, "/api/v1/episodes/", {"customer": {"phone": "07400 111111"}, "kind": "visit"}
    )
    assert response.status_code == 201, response.content[:500]
    assert response.json()["location"] == "main-st"


def test_an_org_wide_key_can_log_at_any_of_its_locations(api, ours):
    for slug in ("main-st", "harbour-rd"):
        response = post_json(
            api,
            "/api/v1/episodes/",
            {"customer": {"id": ours.customer_id}, "kind": "visit", "location": slug},
        )
        assert response.status_code == 201, response.content[:500]
        assert response.json()["location"] == slug


# --- the same person in two organizations ----------------------------------------------------


def test_the_same_phone_in_two_orgs_is_two_different_customers(api, outsider_api):
    body = {"customer": {"phone": "+44 7400 123456", "name": "Dan"}, "kind": "visit"}
    ours = post_json(api, "/api/v1/episodes/", body)
    theirs = post_json(outsider_api, "/api/v1/episodes/", {**body, "summary": SECRET_SUMMARY})
    assert ours.status_code == theirs.status_code == 201

    our_customer, their_customer = ours.json()["customer"], theirs.json()["customer"]
    assert our_customer != their_customer
    assert Identifier.objects.filter(value="+447400123456").count() == 2
    assert (
        Customer.objects.get(pk=our_customer).organization_id
        != Customer.objects.get(pk=their_customer).organization_id
    )
    # Each organization finds only its own, and sees only its own story.
    found = api.get("/api/v1/customers/?phone=%2B447400123456").json()["results"]
    assert [c["id"] for c in found] == [our_customer]
    found = outsider_api.get("/api/v1/customers/?phone=%2B447400123456").json()["results"]
    assert [c["id"] for c in found] == [their_customer]
    timeline = api.get(f"/api/v1/customers/{our_customer}/timeline/").json()["results"]
    assert [e["id"] for e in timeline] == [ours.json()["id"]]
    assert SECRET_SUMMARY not in json.dumps(timeline)
    assert Customer.objects.get(pk=our_customer).episode_count == 1
    assert Customer.objects.get(pk=their_customer).episode_count == 1


def test_logging_with_another_orgs_phone_creates_our_own_customer(api, theirs):
    response = post_json(
        api, "/api/v1/episodes/", {"customer": {"phone": SECRET_PHONE}, "kind": "visit"}
    )
    assert response.status_code == 201
    assert response.json()["customer"] != theirs.customer_id
    assert_no_leak(response)
    customer = api.get(f"/api/v1/customers/{response.json()['customer']}/").json()
    assert customer["name"] == ""
    assert customer["episode_count"] == 1
    assert Customer.objects.get(pk=theirs.customer_id).episode_count == 1


def test_idempotency_keys_are_per_tenant(api, outsider_api):
    """The same Idempotency-Key from two organizations is two requests, not a replay."""
    body = {"customer": {"phone": "+44 7400 123456"}, "kind": "visit"}
    ours = post_json(api, "/api/v1/episodes/", body, HTTP_IDEMPOTENCY_KEY="shared-key")
    theirs = post_json(outsider_api, "/api/v1/episodes/", body, HTTP_IDEMPOTENCY_KEY="shared-key")
    assert ours.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs
    assert ours.json()["id"] != theirs.json()["id"]
    assert ours.json()["customer"] != theirs.json()["customer"]


def test_external_ids_are_per_tenant(api, outsider_api):
    body = {"customer": {"phone": "+44 7400 123456"}, "kind": "visit", "external_id": "T-1"}
    ours = post_json(api, "/api/v1/episodes/", body)
    theirs = post_json(outsider_api, "/api/v1/episodes/", body)
    assert ours.status_code == theirs.status_code == 201
    assert ours.json()["id"] != theirs.json()["id"]


# --- who is asking: 401 and 403 --------------------------------------------------------------

ENDPOINTS = [
    ("get", "/api/v1/customers/"),
    ("get", "/api/v1/customers/{customer}/"),
    ("patch", "/api/v1/customers/{customer}/"),
    ("get", "/api/v1/customers/{customer}/timeline/"),
    ("get", "/api/v1/episodes/{episode}/"),
    ("post", "/api/v1/episodes/{episode}/experience/"),
    ("post", "/api/v1/episodes/"),
    ("post", "/api/v1/episodes/bulk/"),
    ("get", "/api/v1/locations/"),
]
BODIES = {
    "/api/v1/customers/{customer}/": {"notes": "x"},
    "/api/v1/episodes/{episode}/experience/": {"experience": -2},
    "/api/v1/episodes/": {"customer": {"phone": "07400 123456"}, "kind": "visit"},
    "/api/v1/episodes/bulk/": {
        "episodes": [{"customer": {"phone": "07400 123456"}, "kind": "visit"}]
    },
}


def call(client, method, template, ours, **extra):
    url = template.format(customer=ours.customer_id, episode=ours.pk)
    if method == "get":
        return client.get(url, **extra)
    return getattr(client, method)(
        url, data=json.dumps(BODIES[template]), content_type="application/json", **extra
    )


@pytest.mark.parametrize(("method", "template"), ENDPOINTS)
def test_unauthenticated_requests_are_401_with_www_authenticate(ours, method, template):
    before = snapshot()
    response = call(APIClient(), method, template, ours)
    assert response.status_code == 401, response.content[:500]
    assert response.headers.get("WWW-Authenticate", "").startswith("Api-Key")
    assert response.json()["error"] == "not_authenticated"
    assert snapshot() == before


@pytest.mark.parametrize(("method", "template"), ENDPOINTS)
def test_a_revoked_key_is_401_everywhere(org, ours, method, template):
    api_key, raw = create_api_key(organization=org, name="Old till")
    client = key_client(raw)
    assert client.get("/api/v1/locations/").status_code == 200
    assert revoke_api_key(api_key=api_key) is True
    before = snapshot()

    response = call(client, method, template, ours)
    assert response.status_code == 401, response.content[:500]
    assert "WWW-Authenticate" in response.headers
    assert snapshot() == before


@pytest.fixture
def real_key(org_key):
    return org_key


MALFORMED = [
    pytest.param(lambda raw: "Bearer " + raw, id="bearer"),
    pytest.param(lambda raw: "Basic dXNlcjpwYXNz", id="basic"),
    pytest.param(lambda raw: "Token " + raw, id="token"),
    pytest.param(lambda raw: "Api-Key", id="no-secret"),
    pytest.param(lambda raw: "Api-Key ", id="blank-secret"),
    pytest.param(lambda raw: f"Api-Key {raw} extra", id="three-parts"),
    pytest.param(lambda raw: f"Api-Key{raw}", id="no-space"),
    pytest.param(lambda raw: "Api-Key abc", id="not-a-key"),
    pytest.param(lambda raw: "Api-Key cbk_", id="prefix-only"),
    pytest.param(lambda raw: "Api-Key cbk__secret", id="empty-prefix"),
    pytest.param(lambda raw: "Api-Key cbk_ab-cd_secret", id="prefix-not-alnum"),
    pytest.param(lambda raw: "Api-Key xyz" + raw[3:], id="wrong-scheme-prefix"),
    pytest.param(
        lambda raw: "Api-Key " + "_".join(raw.split("_", 2)[:2]) + "_wrong", id="wrong-secret"
    ),
    pytest.param(lambda raw: f"Api-Key {raw}x", id="extra-character"),
    pytest.param(lambda raw: f"Api-Key {raw[:-1]}", id="one-character-short"),
    pytest.param(lambda raw: f"Api-Key {raw.upper()}", id="upper-cased"),
    pytest.param(lambda raw: "Api-Key cbk_" + "a" * 5000 + "_x", id="huge-prefix"),
    pytest.param(lambda raw: "Api-Key " + "k" * 20000, id="huge-key"),
    pytest.param(lambda raw: "Api-Key cbk_ab\x00cd_x", id="nul-in-prefix"),
    pytest.param(lambda raw: f"Api-Key {raw}\x00", id="nul-after-key"),
    # Headers arrive as latin-1 text in WSGI: UTF-8 bytes of non-ASCII show up like this.
    pytest.param(lambda raw: "Api-Key " + "cbk_caf\u00c3\u00a9_x", id="non-ascii-utf8-bytes"),
    pytest.param(lambda raw: "Api-Key " + raw[:-2] + "\u00e9\u00ff", id="non-ascii-latin1"),
    pytest.param(lambda raw: "Api-Key\u00a0" + raw, id="nbsp-separator"),
]


@pytest.mark.parametrize("make_header", MALFORMED)
@pytest.mark.parametrize(("method", "template"), [ENDPOINTS[1], ENDPOINTS[6]])
def test_a_malformed_authorization_header_is_401_never_500(
    real_key, ours, make_header, method, template
):
    client = APIClient()
    client.raise_request_exception = False
    before = snapshot()
    response = call(client, method, template, ours, HTTP_AUTHORIZATION=make_header(real_key))
    assert response.status_code == 401, (response.status_code, response.content[:500])
    assert "WWW-Authenticate" in response.headers
    assert response.json()["error"] == "not_authenticated"
    assert snapshot() == before


def test_a_bad_api_key_header_wins_over_a_valid_session(owner, ours):
    """A failing key is a failure, not a fallback to whoever is logged in in the browser."""
    client = session_client(owner)
    response = client.get(
        f"/api/v1/customers/{ours.customer_id}/", HTTP_AUTHORIZATION="Api-Key cbk_deadbeef_nope"
    )
    assert response.status_code == 401


def test_the_api_key_keyword_is_case_insensitive(org_key, ours):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"api-key {org_key}")
    assert client.get(f"/api/v1/customers/{ours.customer_id}/").status_code == 200


@pytest.mark.parametrize(("method", "template"), ENDPOINTS)
def test_a_logged_in_user_with_no_membership_is_403(ours, method, template):
    client = session_client(UserFactory())
    before = snapshot()
    response = call(client, method, template, ours)
    assert response.status_code == 403, response.content[:500]
    assert response.json()["error"] == "permission_denied"
    assert_no_leak(response)
    assert "Dana" not in response.content.decode()
    assert snapshot() == before


def test_a_deleted_key_row_is_401_not_500(org, ours):
    api_key, raw = create_api_key(organization=org, name="Gone")
    ApiKey.objects.filter(pk=api_key.pk).delete()
    assert key_client(raw).get("/api/v1/customers/").status_code == 401


def test_a_key_of_a_deleted_location_stops_working(org, main_st, ours):
    _api_key, raw = create_api_key(organization=org, name="Till", location=main_st)
    main_st.delete()
    response = key_client(raw).get("/api/v1/customers/")
    assert response.status_code == 401


# --- every route, page or API, is held here ------------------------------------------------
#
# ROUTES lists every named route of the project with the other organization's objects in its
# URL or body ({customer}, {episode}, {case}, {playbook}, {key}; {ours} is our customer). A
# route missing from the table fails test_every_route_is_in_the_tenancy_table: add it, and say
# who may use it, so the tests below hold it:
# - every route naming another organization's object answers 404 to every one of our actors
#   (or the listed status), and changes nothing of theirs;
# - every listing answers without a trace of theirs;
# - pages: anonymous visitors are sent to log in, users with no membership get a 404, members
#   without the role get the 403 page; API routes: 401 without credentials, 403 without a
#   membership.

PAGE, API, PUBLIC = "page", "api", "public"
MEMBERS, MANAGERS, OWNERS = "members", "managers", "owners"
NOT_FOUND = frozenset({404})


@dataclass(frozen=True)
class Call:
    method: str
    body: dict | None = None
    expect: frozenset[int] = NOT_FOUND  # for a call naming their object; else it must not leak


@dataclass(frozen=True)
class Route:
    kind: str  # PAGE, API or PUBLIC
    url: str
    calls: tuple[Call, ...] = (Call("get"),)
    who: str = MEMBERS  # pages: who may open it

    @property
    def names_theirs(self) -> bool:
        text = self.url + json.dumps([c.body for c in self.calls])
        return any(
            f"{{{name}}}" in text
            for name in (
                "customer",
                "episode",
                "case",
                "playbook",
                "key",
                "webhook",
                "delivery",
                "location",
                "organization",
                "member",
                "invitation",
                "device",
                "batch",
                "partner",
                "incident",
            )
        )


GET = Call("get")
ROUTES: dict[str, Route] = {
    "home": Route(PUBLIC, "/"),
    "readyz": Route(PUBLIC, "/readyz"),
    "csp-report": Route(PUBLIC, "/csp-report/", (Call("post", {"csp-report": "{}"}),)),
    "login": Route(PUBLIC, "/accounts/login/"),
    "logout": Route(PUBLIC, "/accounts/logout/", (Call("post"),)),
    "api-schema": Route(PUBLIC, "/api/v1/schema/"),
    "api-docs": Route(PUBLIC, "/api/docs/"),
    # accounts
    "api-keys": Route(PAGE, "/accounts/api-keys/", who=OWNERS),
    "api-key-revoke": Route(PAGE, "/accounts/api-keys/{key}/revoke/", (Call("post"),), OWNERS),
    "pos-embedding": Route(
        PAGE, "/accounts/pos-embedding/", (Call("post", {"origins": ""}, frozenset({302})),),
        OWNERS,
    ),
    "unlock-login": Route(
        PAGE, "/accounts/unlock-login/", (Call("post", {"email": "person@example.com"}),), MANAGERS
    ),
    # the customer pages
    "customer-search": Route(PAGE, "/customers/?q=Secret"),
    "customer-page": Route(PAGE, "/customers/{customer}/"),
    "customer-notes": Route(PAGE, "/customers/{customer}/notes/", (Call("post", {"notes": "x"}),)),
    "customer-outreach": Route(
        PAGE, "/customers/{customer}/outreach/",
        (Call("post", {"channel": "call", "summary": "Hello"}),),
    ),
    "customer-experience": Route(
        PAGE, "/customers/{customer}/experience/",
        (Call("post", {"episode": "{episode}", "experience": "2"}),),
    ),
    "customer-audit": Route(PAGE, "/customers/{customer}/audit/", who=OWNERS),
    "audit": Route(PAGE, "/audit/", who=OWNERS),
    "customer-merge": Route(
        PAGE, "/customers/{customer}/merge/",
        (GET, Call("post", {"duplicate": "{ours}", "confirm": "yes"})), MANAGERS,
    ),
    # the queue, cases, playbooks and insights
    "queue": Route(PAGE, "/recovery/", who=MANAGERS),
    "queue-export": Route(PAGE, "/recovery/cases.csv", who=MANAGERS),
    "queue-bulk": Route(
        PAGE, "/recovery/bulk/",
        (Call("post", {"cases": "{case}", "action": "dismiss", "reason": "x"}, frozenset({302})),),
        MANAGERS,
    ),
    "digest": Route(
        PAGE, "/recovery/digest/", (Call("post", {}, frozenset({302})),), MANAGERS
    ),
    "case-page": Route(
        PAGE, "/recovery/cases/{case}/",
        (GET, Call("post", {"action": "dismiss", "reason": "x"})), MANAGERS,
    ),
    "queue-case": Route(PAGE, "/recovery/cases/{case}/assign-me/", (Call("post"),), MANAGERS),
    "playbooks": Route(PAGE, "/recovery/playbooks/", who=MANAGERS),
    "playbook-new": Route(PAGE, "/recovery/playbooks/new/", who=MANAGERS),
    "playbook-edit": Route(
        PAGE, "/recovery/playbooks/{playbook}/", (GET, Call("post", {"name": "Mine"})), MANAGERS
    ),
    "playbook-move": Route(PAGE, "/recovery/playbooks/{playbook}/up/", (Call("post"),), MANAGERS),
    "insights": Route(PAGE, "/insights/", who=MANAGERS),
    # the till
    "pos": Route(PAGE, "/pos/"),
    "pos-location": Route(PAGE, "/pos/location/", (Call("post", {"location": "elsewhere"}),)),
    "pos-lookup": Route(PAGE, "/pos/lookup/?q=Secret"),
    "pos-customer": Route(PAGE, "/pos/customers/{customer}/"),
    "pos-log": Route(
        PAGE, "/pos/customers/{customer}/log/", (Call("post", {"kind": "note", "summary": "x"}),)
    ),
    "pos-case": Route(PAGE, "/pos/cases/{case}/resolve/", (Call("post", {"note": "x"}),)),
    # the API
    "api-episode-create": Route(
        API, "/api/v1/episodes/",
        (Call("post", {"customer": {"id": "{customer}"}, "kind": "visit"}),),
    ),
    "api-episode-bulk": Route(
        API, "/api/v1/episodes/bulk/",
        (Call("post", {"episodes": [{"customer": {"id": "{customer}"}, "kind": "visit"}]},
              frozenset({200})),),
    ),
    "api-episode-detail": Route(API, "/api/v1/episodes/{episode}/"),
    "api-episode-experience": Route(
        API, "/api/v1/episodes/{episode}/experience/", (Call("post", {"experience": 2}),)
    ),
    "api-customer-list": Route(API, "/api/v1/customers/?q=Secret"),
    "api-customer-lookup": Route(
        API, "/api/v1/customers/lookup/", (Call("post", {"phone": SECRET_PHONE}),)
    ),
    "api-customer-detail": Route(
        API, "/api/v1/customers/{customer}/", (GET, Call("patch", {"notes": "mine"}))
    ),
    "api-customer-timeline": Route(API, "/api/v1/customers/{customer}/timeline/"),
    "api-location-list": Route(API, "/api/v1/locations/"),
    "api-case-list": Route(API, "/api/v1/cases/"),
    "api-case-detail": Route(API, "/api/v1/cases/{case}/"),
    "api-case-acknowledge": Route(API, "/api/v1/cases/{case}/acknowledge/", (Call("post", {}),)),
    "api-case-assign": Route(
        API, "/api/v1/cases/{case}/assign/", (Call("post", {"assignee": None}),)
    ),
    "api-case-resolve": Route(API, "/api/v1/cases/{case}/resolve/", (Call("post", {"note": "x"}),)),
    "api-case-dismiss": Route(
        API, "/api/v1/cases/{case}/dismiss/", (Call("post", {"reason": "x"}),)
    ),
    "api-case-not-now": Route(API, "/api/v1/cases/{case}/not-now/", (Call("post", {}),)),
    "api-sidebar": Route(
        API, "/api/v1/sidebar/?customer={customer}", (GET, Call("post", {"customer": "{customer}"}))
    ),
    "api-insights": Route(API, "/api/v1/insights/summary/"),
    "api-insights-evidence": Route(API, "/api/v1/insights/evidence/"),
    "api-customer-merge": Route(
        API, "/api/v1/customers/{customer}/merge/", (Call("post", {"duplicate": "{ours}"}),)
    ),
    # data rights: owners and organization-wide keys; others are refused (403) or find nothing
    "api-customer-export": Route(
        API, "/api/v1/customers/{customer}/export/", (Call("get", None, frozenset({403, 404})),)
    ),
    "api-customer-erase": Route(
        API, "/api/v1/customers/{customer}/erase/",
        (Call("post", {"reason": "x"}, frozenset({403, 404})),),
    ),
    # the read audit: owners and organization-wide keys, like the data rights above
    "api-read-audit": Route(
        API, "/api/v1/audit/?customer={customer}", (Call("get", None, frozenset({403, 404})),)
    ),
    "api-visits": Route(
        API, "/api/v1/visits/", (Call("post", {"customer": {"id": "{customer}"}}),)
    ),
    "api-playbook-list": Route(API, "/api/v1/playbooks/"),
    "api-playbook-order": Route(
        API, "/api/v1/playbooks/order/",
        (Call("post", {"order": ["{playbook}"]}, frozenset({400, 403, 404})),),
    ),
    "api-playbook-detail": Route(
        API, "/api/v1/playbooks/{playbook}/",
        (GET, Call("patch", {"name": "Mine"}, frozenset({403, 404}))),  # keys may not write
    ),
    # connectors: the settings page and the API are the owners' (and organization-wide keys');
    # Square's notification URL is signed, not logged in to (tests/connectors/test_square.py
    # holds its tenancy: another organization's URL and key cannot write into ours)
    "connector-settings": Route(
        PAGE, "/settings/connections/",
        (GET, Call("post", {"signature_key": "k", "locations": ""}, frozenset({302}))), OWNERS,
    ),
    "connector-square-revoke": Route(
        PAGE, "/settings/connections/square/revoke/", (Call("post", {}, frozenset({302})),), OWNERS
    ),
    "connector-reasons": Route(
        PAGE, "/settings/connections/reasons/",
        (Call("post", {"entries": "cold = wait"}, frozenset({302})),), OWNERS,
    ),
    "api-square-connection": Route(
        API, "/api/v1/connectors/square/",
        (GET, Call("post", {"signature_key": "k"}, frozenset({200, 201, 403}))),
    ),
    "square-notifications": Route(PUBLIC, "/api/v1/connectors/square/{token}/"),
    "api-reason-map": Route(
        API,
        "/api/v1/connectors/reasons/",
        (GET, Call("put", {"entries": []}, frozenset({200, 403}))),
    ),
    "api-check-create": Route(
        API, "/api/v1/checks/",
        (Call("post", {"customer": {"id": "{customer}"}, "external_id": "t-1",
                       "lines": [{"name": "x"}]}),),
    ),
    # webhooks: owners and organization-wide keys; others are refused (403) or find nothing
    # partners: owners and managers read them and record answers; owners add and edit them
    "partners": Route(PAGE, "/partners/", who=MANAGERS),
    "partner-new": Route(
        PAGE, "/partners/new/",
        (GET, Call("post", {"name": "Mine", "touchpoints": "delivery"})), OWNERS,
    ),
    "partner-page": Route(PAGE, "/partners/{partner}/", who=MANAGERS),
    "partner-edit": Route(
        PAGE, "/partners/{partner}/edit/",
        (GET, Call("post", {"name": "Mine", "touchpoints": "wait"})), OWNERS,
    ),
    "partner-incident": Route(
        PAGE, "/partners/incidents/{incident}/", (Call("post", {"action": "fixed"}),), MANAGERS
    ),
    "partner-scorecard": Route(PAGE, "/partners/scorecard/", who=MANAGERS),
    "partner-scorecard-csv": Route(PAGE, "/partners/scorecard.csv", who=MANAGERS),
    "api-partner-list": Route(API, "/api/v1/partners/"),
    "api-partner-incidents": Route(API, "/api/v1/partners/{partner}/incidents/"),
    "api-partner-scorecard": Route(API, "/api/v1/partners/scorecard/"),
    "webhook-settings": Route(PAGE, "/settings/webhooks/", who=OWNERS),
    "webhook-endpoint-action": Route(
        PAGE, "/settings/webhooks/{webhook}/", (Call("post", {"action": "disable"}),), OWNERS
    ),
    "api-webhook-list": Route(
        API, "/api/v1/webhooks/",
        (GET, Call("post", {"url": "https://example.com/hook", "events": ["case.opened"]},
                   frozenset({201, 403}))),
    ),
    "api-webhook-detail": Route(
        API, "/api/v1/webhooks/{webhook}/",
        (Call("get", None, frozenset({403, 404})),
         Call("patch", {"description": "mine"}, frozenset({403, 404})),
         Call("delete", None, frozenset({403, 404}))),
    ),
    "api-webhook-test": Route(
        API, "/api/v1/webhooks/{webhook}/test/", (Call("post", {}, frozenset({403, 404})),)
    ),
    "api-webhook-rotate-secret": Route(
        API, "/api/v1/webhooks/{webhook}/rotate-secret/",
        (Call("post", {}, frozenset({403, 404})),),
    ),
    "api-webhook-deliveries": Route(
        API, "/api/v1/webhooks/{webhook}/deliveries/", (Call("get", None, frozenset({403, 404})),)
    ),
    "api-webhook-replay": Route(
        API, "/api/v1/webhooks/deliveries/{delivery}/replay/",
        (Call("post", {}, frozenset({403, 404})),),
    ),
    "api-event-list": Route(API, "/api/v1/events/"),
    # settings: owners change them, managers read them (their posts are the 403 page)
    "settings": Route(PAGE, "/settings/", (GET, Call("post", {"name": "Mine"})), MANAGERS),
    "settings-locations": Route(
        PAGE, "/settings/locations/",
        (GET, Call("post", {"name": "Mine", "time_zone": "UTC"})), MANAGERS,
    ),
    "settings-location-edit": Route(
        PAGE, "/settings/locations/{location}/",
        (GET, Call("post", {"name": "Mine", "time_zone": "UTC"})), OWNERS,
    ),
    "settings-location-archive": Route(
        PAGE, "/settings/locations/{location}/archive/", (Call("post"),), OWNERS
    ),
    "settings-location-restore": Route(
        PAGE, "/settings/locations/{location}/restore/", (Call("post"),), OWNERS
    ),
    # sign-up, switching organization (to theirs: a 404) and one's own name
    "signup": Route(PUBLIC, "/accounts/signup/"),
    "switch-organization": Route(
        PAGE, "/accounts/switch-organization/", (Call("post", {"organization": "{organization}"}),)
    ),
    "profile": Route(PAGE, "/accounts/profile/", (GET, Call("post", {"name": "Sam Owner"}))),
    # the team (tests/accounts/test_team_pages.py holds another organization's members and
    # invitations: 404): owners manage it, managers read the page (their posts are the 403 page)
    "team": Route(
        PAGE, "/settings/team/", (GET, Call("post", {"email": "x@example.com", "role": "staff"})),
        MANAGERS,
    ),
    "team-member": Route(
        PAGE, "/settings/team/members/{member}/", (GET, Call("post", {"role": "staff"})), OWNERS
    ),
    "team-member-deactivate": Route(
        PAGE, "/settings/team/members/{member}/deactivate/", (Call("post"),), OWNERS
    ),
    "team-member-reactivate": Route(
        PAGE, "/settings/team/members/{member}/reactivate/", (Call("post"),), OWNERS
    ),
    "team-invitation-resend": Route(
        PAGE, "/settings/team/invitations/{invitation}/resend/", (Call("post"),), OWNERS
    ),
    "team-invitation-revoke": Route(
        PAGE, "/settings/team/invitations/{invitation}/revoke/", (Call("post"),), OWNERS
    ),
    # the invitation link and the passwords: about a person, not an organization
    "invitation-accept": Route(
        PUBLIC, "/accounts/invitations/not-a-token/", (GET, Call("post", {"name": "X"}))
    ),
    "password_reset": Route(
        PUBLIC, "/accounts/password_reset/", (GET, Call("post", {"email": "x@example.com"}))
    ),
    "password_reset_done": Route(PUBLIC, "/accounts/password_reset/done/"),
    "password_reset_confirm": Route(PUBLIC, "/accounts/reset/MQ/not-a-token/"),
    "password_reset_complete": Route(PUBLIC, "/accounts/reset/done/"),
    "password_change": Route(PUBLIC, "/accounts/password_change/"),
    "password_change_done": Route(PUBLIC, "/accounts/password_change/done/"),
    # shared tills: owners and managers run them, every member sets a PIN
    "devices": Route(
        PAGE, "/settings/devices/",
        (GET, Call("post", {"name": "Till"}, frozenset({400}))), MANAGERS,
    ),
    "device-revoke": Route(PAGE, "/settings/devices/{device}/revoke/", (Call("post"),), MANAGERS),
    "pin-reset": Route(PAGE, "/settings/devices/pins/{member}/reset/", (Call("post"),), MANAGERS),
    "device-pair": Route(PAGE, "/till/pair/not-a-pairing-token/", (GET, Call("post"))),
    "pin-set": Route(PAGE, "/accounts/pin/", (GET, Call("post", {"pin": "12"}))),
    # imports: owners only; a POST without a file is a 400
    "import": Route(
        PAGE, "/settings/import/", (GET, Call("post", {"format": "square"}, frozenset({400}))),
        OWNERS,
    ),
    "import-batch": Route(PAGE, "/settings/import/{batch}/", who=OWNERS),
    "import-confirm": Route(PAGE, "/settings/import/{batch}/confirm/", (Call("post"),), OWNERS),
    "import-undo": Route(PAGE, "/settings/import/{batch}/undo/", (Call("post"),), OWNERS),
    "import-rejected": Route(PAGE, "/settings/import/{batch}/rejected.csv", who=OWNERS),
    # the PIN switch is for whoever stands at a paired till, signed in or not: the device
    # cookie is its credential, and without one it is a 404
    "till-switch": Route(PUBLIC, "/till/switch/"),
}  # fmt: skip


def named_routes() -> dict[str, str]:
    """Every named route of the project (the Django admin aside: staff accounts only)."""
    from django.urls import URLPattern, URLResolver, get_resolver

    found: dict[str, str] = {}

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if getattr(pattern, "app_name", None) != "admin":
                    walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                found[pattern.name or prefix + str(pattern.pattern)] = prefix + str(pattern.pattern)

    walk(get_resolver().url_patterns, "/")
    return found


def test_every_route_is_in_the_tenancy_table():
    routes = named_routes()
    missing = sorted(set(routes) - set(ROUTES))
    assert not missing, f"Add to ROUTES (tests/cxcore/test_tenancy.py): {missing}"
    assert not sorted(set(ROUTES) - set(routes)), "ROUTES names routes that are gone"


@pytest.fixture
def their_world(theirs, other_org, other_location, outsider_key, outsider):
    """The other organization's case (from the sweep), a playbook and an API key."""
    from recovery.models import Playbook, RecoveryCase
    from recovery.sweep import sweep_recovery

    sweep_recovery(now=timezone.now())
    case = RecoveryCase.objects.get(customer_id=theirs.customer_id)
    playbook = Playbook.objects.create(organization=other_org, name="Rival's own playbook")
    key = ApiKey.objects.get(organization=other_org)
    webhook = their_webhook(other_org)
    return {
        **their_team_and_tills(other_org, other_location),
        "customer": theirs.customer_id,
        "episode": theirs.pk,
        "case": case.pk,
        "playbook": playbook.pk,
        "key": key.pk,
        "webhook": webhook.endpoint_id,
        "delivery": webhook.pk,
        **their_partner(other_org, case),
        "location": other_location.pk,
        "organization": other_org.pk,
    }


def their_team_and_tills(other_org, other_location) -> dict:
    """The other organization's member (with a PIN), a pending invitation, a paired till and
    an import batch."""
    from accounts.models import Device, Invitation, Membership, hash_token
    from imports.models import ImportBatch

    member = Membership.objects.filter(organization=other_org).earliest("pk")
    Membership.objects.filter(pk=member.pk).update(pin_hash="!not-a-pin")
    invitation = Invitation.objects.create(
        organization=other_org, email="rival.barista@example.com", role=Role.STAFF,
        token_hash=hash_token("their-invitation"), expires_at=timezone.now() + timedelta(days=7),
    )  # fmt: skip
    device = Device.objects.create(
        organization=other_org, location=other_location, name="Rival till",
        token_hash=hash_token("their-till"), paired_at=timezone.now(),
    )  # fmt: skip
    batch = ImportBatch.objects.create(
        organization=other_org, kind="customers", format="square", file_name="rival.csv",
        status="done", dry_run=True,
    )  # fmt: skip
    return {"member": member.pk, "invitation": invitation.pk, "device": device.pk,
            "batch": batch.pk}  # fmt: skip


def their_partner(org, case) -> dict:
    """A partner of `org` running the valet, and its incident beside `case`."""
    from partners.models import Partner, PartnerIncident

    partner = Partner.objects.create(
        organization=org, name="Rival Valet", touchpoints=["parking_valet"],
        created_at=timezone.now(),
    )  # fmt: skip
    episode = case.triggers.get()
    incident = PartnerIncident.objects.create(
        organization=org, partner=partner, customer_id=case.customer_id, episode=episode,
        recovery_case=case, location_id=case.location_id, occurred_at=episode.occurred_at,
        touchpoints=["parking_valet"], experience=-2, opened_at=timezone.now(),
    )  # fmt: skip
    return {"partner": partner.pk, "incident": incident.pk}


def their_webhook(other_org):
    """The other organization's webhook endpoint, with a delivery of one of its events."""
    from webhooks.models import WebhookDelivery
    from webhooks.outbox import emit
    from webhooks.services import create_endpoint

    create_endpoint(
        organization=other_org, url="https://rival.example.com/hook", events=["case.opened"]
    )
    emit(organization_id=other_org.pk, type="case.opened", at=timezone.now(), data={})
    return WebhookDelivery.objects.filter(organization=other_org).latest("pk")


def their_snapshot(org_id: int) -> dict:
    from accounts.models import Device, Invitation, Membership
    from imports.models import ImportBatch
    from partners.models import Partner, PartnerIncident
    from recovery.models import Playbook, RecoveryCase
    from webhooks.models import WebhookDelivery, WebhookEndpoint

    def rows(model) -> list:
        return list(model.objects.filter(organization_id=org_id).order_by("pk").values())

    return {
        "members": rows(Membership),
        "invitations": rows(Invitation),
        "devices": rows(Device),
        "batches": rows(ImportBatch),
        "customers": list(Customer.objects.filter(organization_id=org_id).order_by("pk").values()),
        "episodes": list(Episode.objects.filter(organization_id=org_id).order_by("pk").values()),
        "cases": list(RecoveryCase.objects.filter(organization_id=org_id).order_by("pk").values()),
        "playbooks": list(Playbook.objects.filter(organization_id=org_id).order_by("pk").values()),
        "locations": list(Location.objects.filter(organization_id=org_id).order_by("pk").values()),
        "keys": list(ApiKey.objects.filter(organization_id=org_id).order_by("pk").values()),
        "webhooks": list(
            WebhookEndpoint.objects.filter(organization_id=org_id).order_by("pk").values()
        ),
        "deliveries": list(
            WebhookDelivery.objects.filter(organization_id=org_id).order_by("pk").values()
        ),
        "partners": rows(Partner),
        "incidents": rows(PartnerIncident),
    }


def fill(value, names: dict):
    """The route's URL or body with the objects' ids in place of their names."""
    if isinstance(value, str):
        for name, pk in names.items():
            value = value.replace(f"{{{name}}}", str(pk))
        return int(value) if value.isdigit() and value != "" and "/" not in value else value
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    return value


def send(client, route: Route, call: Call, names: dict):
    url = route.url
    for name, pk in names.items():
        url = url.replace(f"{{{name}}}", str(pk))
    body = fill(call.body, names) if call.body is not None else None
    if route.kind == API:
        if call.method == "get":
            return client.get(url)
        return getattr(client, call.method)(
            url, data=json.dumps(body or {}), content_type="application/json"
        )
    if call.method == "get":
        return client.get(url)
    return client.post(url, body or {})


def page_client(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def our_actors(route: Route, request) -> list:
    """Who in our organization may use the route (so only their tenancy stands between them
    and the other organization's objects)."""
    if route.kind == API:
        return [
            key_client(request.getfixturevalue("org_key")),
            key_client(request.getfixturevalue("till_key")),
            session_client(request.getfixturevalue("owner")),
        ]
    people = {MEMBERS: ["owner", "manager", "staff"], MANAGERS: ["owner", "manager"],
              OWNERS: ["owner"]}[route.who]  # fmt: skip
    return [page_client(request.getfixturevalue(name)) for name in people]


TENANT_ROUTES = sorted(name for name, route in ROUTES.items() if route.kind != PUBLIC)


@pytest.mark.parametrize("name", TENANT_ROUTES)
def test_each_route_keeps_to_our_organization(request, name, their_world, ours, other_org):
    """Their objects are 404 (or the listed answer) to each of us; listings show nothing of
    theirs; and nothing of theirs changes."""
    route = ROUTES[name]
    names = {**their_world, "ours": ours.customer_id}
    before = their_snapshot(other_org.pk)
    for client in our_actors(route, request):
        client.raise_request_exception = False
        for call in route.calls:
            response = send(client, route, call, names)
            if route.names_theirs:
                assert response.status_code in call.expect, (name, call, response.status_code)
            else:
                assert response.status_code < 500, (name, call, response.status_code)
            if response.status_code != 404 and not isinstance(response, StreamingHttpResponse):
                assert_no_leak(response)
            elif isinstance(response, StreamingHttpResponse):
                content = response.streaming_content
                assert isinstance(content, Iterator)  # the test client is sync: so is the body
                assert b"Secret" not in b"".join(content)
    assert their_snapshot(other_org.pk) == before


PAGE_ROUTES = sorted(name for name, route in ROUTES.items() if route.kind == PAGE)


@pytest.mark.parametrize("name", PAGE_ROUTES)
def test_each_page_sends_visitors_to_log_in_and_non_members_away(name, their_world, ours):
    from django.test import Client

    route = ROUTES[name]
    names = {**their_world, "ours": ours.customer_id}
    loner = page_client(UserFactory())
    for call in route.calls:
        anonymous = send(Client(), route, call, names)
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
        assert send(loner, route, call, names).status_code == 404, (name, call)


@pytest.mark.parametrize(
    "name", sorted(name for name in PAGE_ROUTES if ROUTES[name].who != MEMBERS)
)
def test_members_without_the_role_get_the_403_page_saying_who_may(request, name, ours, their_world):
    """Whatever the object (ours, theirs or none), so the 403 tells nothing about objects."""
    route = ROUTES[name]
    refused = ["staff"] + (["manager"] if route.who == OWNERS else [])
    for names in ({**their_world, "ours": ours.customer_id},):
        for person in refused:
            client = page_client(request.getfixturevalue(person))
            for call in route.calls:
                response = send(client, route, call, names)
                assert response.status_code == 403, (name, person, call)
                body = response.content.decode()
                assert "This page is for owners" in body and 'href="/pos/"' in body
                assert_no_leak(response)


API_ROUTES = sorted(name for name, route in ROUTES.items() if route.kind == API)


@pytest.mark.parametrize("name", API_ROUTES)
def test_each_api_route_needs_credentials_and_a_membership(name, their_world, ours):
    route = ROUTES[name]
    names = {**their_world, "ours": ours.customer_id}
    for call in route.calls:
        assert send(APIClient(), route, call, names).status_code == 401, (name, call)
        response = send(session_client(UserFactory()), route, call, names)
        assert response.status_code == 403, (name, call)
        assert_no_leak(response)

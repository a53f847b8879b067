"""The webhooks API: owners and organization-wide keys manage endpoints; bad input is a 400
naming the field and changes nothing; another organization's endpoint is a 404."""

from __future__ import annotations

import pytest

from tests.conftest import key_client
from tests.cxcore.test_tenancy import session_client
from tests.webhooks.helpers import emit, make_endpoint, verified
from webhooks.delivery import deliver_due
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


def create(client, **body):
    return client.post("/api/v1/webhooks/", body, format="json")


def test_creating_an_endpoint_shows_its_secret_once_and_sends_nothing(api, receiver):
    response = create(
        api, url=receiver.url, events=["case.opened", "prompt.shown"], description="Till badge"
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["case.opened", "prompt.shown"]
    assert created["enabled"] is True
    assert response["Cache-Control"] == "no-store"
    listed = api.get("/api/v1/webhooks/").json()
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in api.get(f"/api/v1/webhooks/{created['id']}/").json()
    assert not WebhookDelivery.objects.exists()  # creating an endpoint sends nothing by itself
    deliver_due()
    assert receiver.requests == []


def test_patch_changes_fields_and_turns_an_endpoint_off_and_on(api, org, receiver):
    endpoint, _ = make_endpoint(org, receiver.url)
    url = f"/api/v1/webhooks/{endpoint.pk}/"
    response = api.patch(url, {"events": ["case.resolved"], "description": "x"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["events"] == ["case.resolved"]
    off = api.patch(url, {"enabled": False}, format="json").json()
    assert off["enabled"] is False and off["disabled_reason"] == "Disabled by the organization."
    assert api.patch(url, {"enabled": True}, format="json").json()["enabled"] is True


def test_delete_removes_the_endpoint(api, org, receiver):
    endpoint, _ = make_endpoint(org, receiver.url)
    assert api.delete(f"/api/v1/webhooks/{endpoint.pk}/").status_code == 204
    assert not WebhookEndpoint.objects.exists()


def test_test_sends_a_signed_webhook_test_to_that_endpoint_alone(api, org, receiver):
    endpoint, secret = make_endpoint(org, receiver.url, ["case.opened"])
    make_endpoint(org, receiver.url.replace("/hook", "/other"), ["case.opened"])
    response = api.post(f"/api/v1/webhooks/{endpoint.pk}/test/")
    assert response.status_code == 202, response.content
    assert response.json()["type"] == "webhook.test"
    deliver_due()
    (request,) = receiver.requests
    assert verified(secret, request)["type"] == "webhook.test"
    assert request.headers["comeback-event-type"] == "webhook.test"


def test_rotate_secret_signs_with_both_for_a_day(api, org, receiver):
    endpoint, old = make_endpoint(org, receiver.url)
    response = api.post(f"/api/v1/webhooks/{endpoint.pk}/rotate-secret/")
    assert response.status_code == 200, response.content
    new = response.json()["secret"]
    assert new != old and response.json()["previous_secret_until"]
    emit(org)
    deliver_due()
    (request,) = receiver.requests
    verified(new, request)
    verified(old, request)


def test_deliveries_list_with_their_log_and_a_replay_keeps_the_webhook_id(api, org, receiver):
    endpoint, secret = make_endpoint(org, receiver.url)
    receiver.always(500, b"x" * 5000)
    first = emit(org, n=1)
    emit(org, n=2)
    deliver_due()
    page = api.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/?page_size=1").json()
    (newest,) = page["results"]
    assert newest["type"] == "case.opened" and newest["attempts"] == 1
    assert newest["log"][0]["status_code"] == 500
    assert len(newest["log"][0]["response"]) == 2048  # the first 2 KB
    rest = api.get(page["next"]).json()
    assert rest["next"] is None and rest["results"][0]["webhook_id"] == first.webhook_id
    receiver.always(200)
    delivery = WebhookDelivery.objects.get(event=first)
    response = api.post(f"/api/v1/webhooks/deliveries/{delivery.pk}/replay/")
    assert response.status_code == 202, response.content
    assert response.json()["webhook_id"] == first.webhook_id
    deliver_due()
    again = [r for r in receiver.requests if r.headers["webhook-id"] == first.webhook_id]
    assert len(again) == 2 and again[-1].answered == 200
    verified(secret, again[-1])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["case.opened"]}, "url"),
        ({"url": "http://example.com/hook", "events": ["case.opened"]}, "url"),
        ({"url": "ftp://example.com/hook", "events": ["case.opened"]}, "url"),
        ({"url": "https://127.0.0.1/hook", "events": ["case.opened"]}, "url"),
        ({"url": "https://10.1.2.3/hook", "events": ["case.opened"]}, "url"),
        ({"url": "https://169.254.169.254/latest", "events": ["case.opened"]}, "url"),
        ({"url": "https://[::1]/hook", "events": ["case.opened"]}, "url"),
        ({"url": "https://localhost/hook", "events": ["case.opened"]}, "url"),
        ({"url": "https://user:pw@example.com/", "events": ["case.opened"]}, "url"),
        ({"url": "https://example.com/" + "a" * 2000, "events": ["case.opened"]}, "url"),
        ({"url": 5, "events": ["case.opened"]}, "url"),
        ({"url": "https://example.com/\x00", "events": ["case.opened"]}, "url"),
        ({"url": "https://[::1", "events": ["case.opened"]}, "url"),
        # not URIs: no host, a control character for one, non-ASCII, characters RFC 3986 refuses
        ({"url": "https://", "events": ["case.opened"]}, "url"),
        ({"url": "https://\x84", "events": ["case.opened"]}, "url"),
        ({"url": "https://exämple.com/hook", "events": ["case.opened"]}, "url"),
        ({"url": "https://example.com/{hook}", "events": ["case.opened"]}, "url"),
        ({"url": "https://example.com/a hook", "events": ["case.opened"]}, "url"),
        ({"url": "https://example.com/hook"}, "events"),
        ({"url": "https://example.com/hook", "events": []}, "events"),
        ({"url": "https://example.com/hook", "events": "case.opened"}, "events"),
        ({"url": "https://example.com/hook", "events": ["case.opened", "case.exploded"]},
         "events[1]"),
        ({"url": "https://example.com/hook", "events": ["webhook.test"]}, "events[0]"),
        ({"url": "https://example.com/hook", "events": [3]}, "events[0]"),
        ({"url": "https://example.com/hook", "events": ["case.opened"], "description": "d" * 201},
         "description"),
        ({"url": "https://example.com/hook", "events": ["case.opened"], "description": 7},
         "description"),
        ({"url": "https://example.com/hook", "events": ["case.opened"], "description": "a\x00"},
         "description"),
        ({"url": "https://example.com/hook", "events": ["case.opened"], "secret": "mine"},
         "secret"),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_field_and_creates_nothing(api, settings, body, field):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    response = create(api, **body)
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == field, response.json()
    assert not WebhookEndpoint.objects.exists()


def test_a_lone_surrogate_in_the_url_is_a_400_not_a_500(api):
    raw = '{"url": "https://ex\\udcffample.com/", "events": ["case.opened"]}'
    response = api.post("/api/v1/webhooks/", data=raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == "url"
    assert not WebhookEndpoint.objects.exists()


def test_bad_patches_are_400_and_change_nothing(api, org, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    endpoint, _ = make_endpoint(org, "https://example.com/hook")
    url = f"/api/v1/webhooks/{endpoint.pk}/"
    for body, field in (
        ({"url": "http://example.com/"}, "url"),
        ({"events": ["nope"]}, "events[0]"),
        ({"enabled": "yes"}, "enabled"),
        ({"secret": "x"}, "secret"),
    ):
        response = api.patch(url, body, format="json")
        assert response.status_code == 400 and response.json()["errors"][0]["field"] == field
    assert api.patch(url, [1, 2], format="json").status_code == 400
    fresh = WebhookEndpoint.objects.get()
    assert (fresh.url, fresh.events, fresh.disabled_at) == (endpoint.url, endpoint.events, None)


def test_a_disabled_endpoint_cannot_be_tested_or_replayed_until_back_on(api, org, receiver):
    endpoint, _ = make_endpoint(org, receiver.url)
    emit(org)
    delivery = WebhookDelivery.objects.get()
    api.patch(f"/api/v1/webhooks/{endpoint.pk}/", {"enabled": False}, format="json")
    assert api.post(f"/api/v1/webhooks/{endpoint.pk}/test/").status_code == 409
    assert api.post(f"/api/v1/webhooks/deliveries/{delivery.pk}/replay/").status_code == 409


ROUTES = [
    ("get", "/api/v1/webhooks/"),
    ("post", "/api/v1/webhooks/"),
    ("get", "/api/v1/webhooks/{e}/"),
    ("patch", "/api/v1/webhooks/{e}/"),
    ("delete", "/api/v1/webhooks/{e}/"),
    ("post", "/api/v1/webhooks/{e}/test/"),
    ("post", "/api/v1/webhooks/{e}/rotate-secret/"),
    ("get", "/api/v1/webhooks/{e}/deliveries/"),
    ("post", "/api/v1/webhooks/deliveries/{d}/replay/"),
]


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_location_keys_managers_and_staff_may_not_manage_endpoints(
    request, org, receiver, method, route
):
    endpoint, _ = make_endpoint(org, receiver.url)
    emit(org)
    delivery = WebhookDelivery.objects.get()
    url = route.format(e=endpoint.pk, d=delivery.pk)
    clients = [
        key_client(request.getfixturevalue("till_key")),
        session_client(request.getfixturevalue("manager")),
        session_client(request.getfixturevalue("staff")),
    ]
    for client in clients:
        response = getattr(client, method)(
            url, {"url": receiver.url, "events": ["case.opened"]}, format="json"
        )
        assert response.status_code == 403, (url, response.content)
    assert WebhookEndpoint.objects.count() == 1 and WebhookDelivery.objects.count() == 1


@pytest.mark.parametrize(("method", "route"), ROUTES[2:])
def test_another_organizations_endpoint_is_404_and_untouched(
    request, other_org, receiver, method, route
):
    theirs, _ = make_endpoint(other_org, receiver.url)
    emit(other_org)
    delivery = WebhookDelivery.objects.get()
    url = route.format(e=theirs.pk, d=delivery.pk)
    for client in (
        key_client(request.getfixturevalue("org_key")),
        session_client(request.getfixturevalue("owner")),
    ):
        response = getattr(client, method)(url, {"events": ["case.resolved"]}, format="json")
        assert response.status_code == 404, (url, response.content)
    assert WebhookEndpoint.objects.get().events == theirs.events
    assert WebhookDelivery.objects.count() == 1
    assert request.getfixturevalue("api").get("/api/v1/webhooks/").json() == []


def test_owners_manage_endpoints_from_a_session(org, owner, receiver):
    client = session_client(owner)
    assert create(client, url=receiver.url, events=["case.opened"]).status_code == 201

"""The owners' webhooks page: the secret is shown once, in the answer to the POST, and kept
nowhere (not the session); reposting the form creates nothing more."""

from __future__ import annotations

import re

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from tests.webhooks.helpers import verified
from webhooks.delivery import deliver_due
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db
PAGE = "/settings/webhooks/"


def owner_client(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def form_id(client: Client) -> str:
    match = re.search(r'name="form_id" value="([^"]+)"', client.get(PAGE).content.decode())
    assert match
    return match.group(1)


def add(client: Client, url: str, form: str | None = None):
    data = {"url": url, "events": ["case.opened", "prompt.shown"], "description": "Till badge"}
    return client.post(PAGE, {**data, "form_id": form or form_id(client)})


def test_an_owner_adds_an_endpoint_and_sees_its_secret_once(owner, org, receiver):
    client = owner_client(owner)
    form = form_id(client)
    response = add(client, receiver.url, form)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    endpoint = WebhookEndpoint.objects.get()
    page = response.content.decode()
    assert endpoint.secret in page
    assert endpoint.events == ["case.opened", "prompt.shown"]
    assert endpoint.secret not in client.get(PAGE).content.decode()
    for session in Session.objects.all():
        assert endpoint.secret not in str(session.get_decoded())
    again = add(client, receiver.url, form)  # a reload of the answer re-posts the form
    assert WebhookEndpoint.objects.count() == 1
    assert endpoint.secret not in again.content.decode()
    assert "already added" in again.content.decode()


def test_bad_input_on_the_page_says_what_and_adds_nothing(owner, org, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    client = owner_client(owner)
    response = add(client, "http://example.com/hook")
    assert response.status_code == 200
    assert "must use https" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_the_page_tests_turns_off_and_on_and_deletes(owner, org, receiver):
    client = owner_client(owner)
    add(client, receiver.url)
    endpoint = WebhookEndpoint.objects.get()
    action = f"{PAGE}{endpoint.pk}/"
    assert client.post(action, {"action": "test"}).status_code == 302
    deliver_due()
    (request,) = receiver.requests
    assert verified(endpoint.secret, request)["type"] == "webhook.test"
    client.post(action, {"action": "disable"})
    endpoint.refresh_from_db()
    assert not endpoint.is_enabled
    assert "Turn on" in client.get(PAGE).content.decode()
    client.post(action, {"action": "enable"})
    endpoint.refresh_from_db()
    assert endpoint.is_enabled
    client.post(action, {"action": "delete"})
    assert not WebhookEndpoint.objects.exists()


def test_the_admin_lists_webhooks_without_their_secrets(org, receiver):
    from accounts.models import User
    from tests.webhooks.helpers import emit, make_endpoint

    endpoint, secret = make_endpoint(org, receiver.url)
    emit(org)
    client = Client()
    client.force_login(User.objects.create_superuser("root@example.com", "pw-for-tests-1"))
    for url in (
        "/admin/webhooks/webhookendpoint/",
        f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/",
        "/admin/webhooks/webhookevent/",
        "/admin/webhooks/webhookdelivery/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert secret not in response.content.decode()

"""Email end to end: a real SMTP server (aiosmtpd) on a loopback port, configured through
EMAIL_URL's parser; a password reset and an invitation are sent through it, read from what the
server received, and their links followed."""

import re
import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from django.core.cache import cache
from django.test import Client

from accounts.models import Membership, User
from cxcore.settings import email_from_url
from tests.factories import UserFactory

NEW_PASSWORD = "a-fresh-flat-white-7"


class Inbox:
    """aiosmtpd's handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd names it
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_inbox(settings) -> Iterator[Inbox]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        for name, value in email_from_url(f"smtp://127.0.0.1:{port}").items():
            setattr(settings, name, value)
        settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "", ""
        settings.EMAIL_TIMEOUT = 5
        settings.SITE_URL = "http://testserver"
        cache.clear()
        yield inbox
    finally:
        controller.stop()


def link_in(message: EmailMessage, path: str) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    match = re.search(rf"http://testserver({re.escape(path)}\S+)", body.get_content())
    assert match, body.get_content()
    return match.group(1)


def test_a_password_reset_through_a_real_smtp_server(smtp_inbox, db):
    UserFactory.create(email="ana@example.com")
    client = Client()
    assert client.post("/accounts/password_reset/", {"email": "ana@example.com"}).status_code == 302
    (message,) = smtp_inbox.messages
    assert message["To"] == "ana@example.com"
    assert message["Subject"] == "Reset your Comeback password"
    landing = client.get(link_in(message, "/accounts/reset/"))
    assert landing.status_code == 302
    done = client.post(
        landing["Location"], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert done.status_code == 302
    login = Client().post(
        "/accounts/login/", {"username": "ana@example.com", "password": NEW_PASSWORD}
    )
    assert login.status_code == 302 and login["Location"] == "/customers/"


def test_an_invitation_through_a_real_smtp_server(
    smtp_inbox, owner, org, django_capture_on_commit_callbacks
):
    owner_client = Client()
    owner_client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            "/settings/team/", {"email": "bea@example.com", "role": "staff"}
        )
    assert response.status_code == 302
    (message,) = smtp_inbox.messages
    assert message["To"] == "bea@example.com" and "Corner Cup" in message["Subject"]
    barista = Client()
    url = link_in(message, "/accounts/invitations/")
    joined = barista.post(
        url, {"name": "Bea Barista", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
    )
    assert joined.status_code == 302
    bea = User.objects.get(email="bea@example.com")
    assert Membership.objects.get(user=bea, organization=org).role == "staff"
    assert barista.get("/pos/").status_code == 200

"""Password reset in a real browser at phone width: from the login page's link to a new
password and back in. No CSP violation; axe-core reports no serious or critical violation."""

import re

import pytest
from django.core import mail

from tests.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "a-fresh-flat-white-7"


def test_forgot_password_from_the_login_page_to_logged_in(live_server, phone_page, settings, axe):
    settings.SITE_URL = live_server.url
    UserFactory.create(email="ana@example.com")
    page = phone_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    assert axe(page) == []
    page.get_by_label("Email").fill("ana@example.com")
    page.get_by_role("button", name="Email me a reset link").click()
    page.wait_for_url("**/accounts/password_reset/done/")
    assert page.get_by_role("heading", name="Check your email").is_visible()

    (message,) = mail.outbox
    link = re.search(r"http://\S+/accounts/reset/\S+/", str(message.body))
    assert link, message.body
    page.goto(link.group(0))
    assert axe(page) == []
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set my new password").click()
    page.wait_for_url("**/accounts/reset/done/")
    page.get_by_role("link", name="Log in").first.click()
    page.fill("input[name=username]", "ana@example.com")
    page.fill("input[name=password]", NEW_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)

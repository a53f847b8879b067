"""Credential stuffing: many emails tried from one address lock that address for the login
form (accounts/lockout.py, LOGIN_ADDRESS_FAILURE_LIMIT), far above the per-email limit so a
cafe's tills behind one address keep logging in through ordinary typos."""

from __future__ import annotations

from datetime import timedelta

from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.accounts.test_lockout import ADMIN_LOGIN, APP_LOGIN, PASSWORD, TILLS, attempt

STUFFER = "192.0.2.66"


def stuff(address: str, count: int, *, url: str = APP_LOGIN) -> None:
    for n in range(count):
        _, response = attempt(url, f"victim{n}@example.com", "hunter2", address)
        assert response.status_code == 200, (n, response.status_code)


def assert_address_refused(client: Client, response) -> None:
    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    body = response.content.decode()
    assert "Too many failed log-ins from this network" in body
    assert "Try again in 15 minutes" in body
    assert 'name="password"' in body
    assert "_auth_user_id" not in client.session


def test_the_address_limit_is_ten_times_the_email_limit():
    assert settings.LOGIN_ADDRESS_FAILURE_LIMIT == 50
    assert settings.LOGIN_ADDRESS_FAILURE_LIMIT >= 10 * settings.AXES_FAILURE_LIMIT


def test_fifty_failures_across_emails_lock_the_address_even_for_a_right_password(owner):
    stuff(STUFFER, settings.LOGIN_ADDRESS_FAILURE_LIMIT)
    client, response = attempt(APP_LOGIN, owner.email, PASSWORD, STUFFER)
    assert_address_refused(client, response)
    # The admin's login is the same door.
    client, response = attempt(ADMIN_LOGIN, owner.email, PASSWORD, STUFFER, next="/admin/")
    assert_address_refused(client, response)


def test_another_address_is_not_locked_by_them(owner):
    stuff(STUFFER, settings.LOGIN_ADDRESS_FAILURE_LIMIT)
    client, response = attempt(APP_LOGIN, owner.email, PASSWORD, TILLS)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(owner.pk)


def test_one_short_of_the_limit_still_logs_in(owner):
    stuff(STUFFER, settings.LOGIN_ADDRESS_FAILURE_LIMIT - 1)
    _, response = attempt(APP_LOGIN, owner.email, PASSWORD, STUFFER)
    assert response.status_code == 302


def test_a_busy_cafes_typos_do_not_lock_its_tills(owner, manager, staff):
    """Twelve people behind one address, each mistyping four times in the cool-off (under
    their own limit of five): 48 failures, and everyone still logs in."""
    for person in range(12):
        for n in range(4):
            attempt(APP_LOGIN, f"person{person}@example.com", f"typo {n}", TILLS)
    for user in (owner, manager, staff):
        _, response = attempt(APP_LOGIN, user.email, PASSWORD, TILLS)
        assert response.status_code == 302, user.email


def test_failures_older_than_the_cool_off_do_not_count(owner):
    stuff(STUFFER, settings.LOGIN_ADDRESS_FAILURE_LIMIT)
    AccessAttempt.objects.filter(ip_address=STUFFER).update(
        attempt_time=AccessAttempt.objects.get(username="victim0@example.com").attempt_time
        - settings.AXES_COOLOFF_TIME
        - timedelta(seconds=1)
    )
    _, response = attempt(APP_LOGIN, owner.email, PASSWORD, STUFFER)
    assert response.status_code == 302


def test_the_login_page_itself_still_loads_for_a_locked_address():
    response = Client(REMOTE_ADDR=STUFFER).get(reverse("login"))
    assert response.status_code == 200

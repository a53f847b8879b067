"""Login lockout (accounts/lockout.py, django-axes): by email and client address together, on the
app's login and the admin's, shown on the login page, lifted by a manager's operator or by time."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from tests.factories import UserFactory

PASSWORD = "pw-for-tests-1"  # tests.factories.UserFactory
TILLS = "203.0.113.7"  # one cafe's tills, behind one address
APP_LOGIN = reverse("login")
ADMIN_LOGIN = "/admin/login/"


def attempt(url: str, email: str, password: str, address: str = TILLS, **extra):
    client = Client(REMOTE_ADDR=address)
    response = client.post(url, {"username": email, "password": password, **extra})
    return client, response


def lock(url: str, email: str, address: str = TILLS) -> None:
    for _ in range(5):
        attempt(url, email, "wrong password", address)


def assert_refused_with_when_to_try_again(client: Client, response) -> None:
    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    body = response.content.decode()
    assert "Too many failed log-ins for this email" in body
    assert "Try again in 15 minutes" in body
    assert "ask your manager or owner to unlock it" in body
    assert 'name="password"' in body  # the login page itself, not a bare text
    assert "_auth_user_id" not in client.session


def test_five_wrong_passwords_then_the_right_one_is_refused_saying_when_to_try_again(owner):
    for n in range(4):
        _, response = attempt(APP_LOGIN, owner.email, f"wrong {n}")
        assert response.status_code == 200
        assert "correct email and password" in response.content.decode()
    _, fifth = attempt(APP_LOGIN, owner.email, "wrong 5")
    assert fifth.status_code == 429

    client, response = attempt(APP_LOGIN, owner.email, PASSWORD)
    assert_refused_with_when_to_try_again(client, response)
    assert "correct email and password" not in response.content.decode()  # it may well be
    assert response.templates[0].name == "registration/login.html"


def test_another_email_from_the_same_tills_still_logs_in(owner, manager):
    lock(APP_LOGIN, owner.email)
    client, response = attempt(APP_LOGIN, manager.email, PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(manager.pk)


def test_the_same_email_from_another_address_still_logs_in(owner):
    lock(APP_LOGIN, owner.email)
    client, response = attempt(APP_LOGIN, owner.email, PASSWORD, address="198.51.100.20")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(owner.pk)


def test_the_email_counts_whatever_its_case(owner):
    for n in range(5):
        attempt(APP_LOGIN, owner.email.upper() if n % 2 else owner.email, "wrong")
    client, response = attempt(APP_LOGIN, owner.email, PASSWORD)
    assert_refused_with_when_to_try_again(client, response)


def test_after_the_cool_off_the_right_password_logs_in(owner):
    lock(APP_LOGIN, owner.email)
    assert attempt(APP_LOGIN, owner.email, PASSWORD)[1].status_code == 429
    # 16 minutes pass: the attempts' times are what they would be by then.
    for row in AccessAttempt.objects.filter(username=owner.email):
        AccessAttempt.objects.filter(pk=row.pk).update(
            attempt_time=row.attempt_time - timedelta(minutes=16)
        )
    client, response = attempt(APP_LOGIN, owner.email, PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(owner.pk)


def test_trying_during_the_lockout_restarts_the_wait(owner):
    lock(APP_LOGIN, owner.email)
    for row in AccessAttempt.objects.filter(username=owner.email):
        AccessAttempt.objects.filter(pk=row.pk).update(
            attempt_time=row.attempt_time - timedelta(minutes=10)
        )
    assert attempt(APP_LOGIN, owner.email, PASSWORD)[1].status_code == 429  # a try, now
    for row in AccessAttempt.objects.filter(username=owner.email):
        AccessAttempt.objects.filter(pk=row.pk).update(
            attempt_time=row.attempt_time - timedelta(minutes=10)
        )
    assert attempt(APP_LOGIN, owner.email, PASSWORD)[1].status_code == 429  # 10 min after it


def test_unlock_login_lifts_the_lockout_at_once(owner):
    lock(APP_LOGIN, owner.email)
    out = StringIO()
    call_command("unlock_login", owner.email.upper(), stdout=out)
    assert out.getvalue() == f"Unlocked {owner.email}.\n"
    _, response = attempt(APP_LOGIN, owner.email, PASSWORD)
    assert response.status_code == 302
    out = StringIO()
    call_command("unlock_login", owner.email, stdout=out)
    assert out.getvalue() == f"{owner.email} was not locked.\n"


def test_unlock_login_for_one_address_keeps_the_others_locked(owner):
    lock(APP_LOGIN, owner.email)
    lock(APP_LOGIN, owner.email, address="198.51.100.20")
    call_command("unlock_login", owner.email, "--ip", TILLS, stdout=StringIO())
    assert attempt(APP_LOGIN, owner.email, PASSWORD)[1].status_code == 302
    assert attempt(APP_LOGIN, owner.email, PASSWORD, "198.51.100.20")[1].status_code == 429


@override_settings(AXES_FAILURE_LIMIT=2)
def test_login_failure_limit_is_the_setting(owner):
    lock_once = [attempt(APP_LOGIN, owner.email, "wrong")[1].status_code for _ in range(2)]
    assert lock_once == [200, 429]


def test_wrong_passwords_are_not_kept(owner):
    lock(APP_LOGIN, owner.email)
    for row in AccessAttempt.objects.all():
        assert "wrong password" not in f"{row.get_data} {row.post_data}"


# --- behind a proxy --------------------------------------------------------------------------


def test_a_forwarded_address_counts_only_behind_a_trusted_proxy(owner, manager):
    proxy = "172.18.0.5"
    for n in range(5):  # five addresses claimed, one real: locked as that one
        attempt(APP_LOGIN, owner.email, "wrong", proxy, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
    assert attempt(APP_LOGIN, owner.email, PASSWORD, proxy)[1].status_code == 429


@override_settings(TRUST_X_FORWARDED_FOR=True)
def test_behind_a_trusted_proxy_its_last_forwarded_address_is_the_client(owner):
    proxy = "172.18.0.5"
    client = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=f"10.9.9.9, {TILLS}")
    for _ in range(5):
        client.post(APP_LOGIN, {"username": owner.email, "password": "wrong"})
    assert AccessAttempt.objects.get().ip_address == TILLS  # not what the client wrote first
    elsewhere = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.20")
    assert (
        elsewhere.post(APP_LOGIN, {"username": owner.email, "password": PASSWORD}).status_code
        == 302
    )
    same = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=TILLS)
    assert same.post(APP_LOGIN, {"username": owner.email, "password": PASSWORD}).status_code == 429


# --- the admin -------------------------------------------------------------------------------


@pytest.fixture
def operator(db):
    return UserFactory(is_staff=True, is_superuser=True)


def admin_attempt(email: str, password: str, address: str = TILLS):
    return attempt(ADMIN_LOGIN, email, password, address, next="/admin/")


def test_the_admin_locks_after_five_wrong_passwords_saying_when_to_try_again(operator, owner):
    for _ in range(5):
        admin_attempt(operator.email, "wrong")
    client, response = admin_attempt(operator.email, PASSWORD)
    assert_refused_with_when_to_try_again(client, response)
    assert response.templates[0].name == "admin/login.html"
    assert 'class="errornote"' in response.content.decode()  # where the admin shows errors
    _, other = admin_attempt(owner.email, "wrong")  # another email, the same address
    assert other.status_code == 200


def test_the_admin_and_the_app_share_one_count(operator):
    for n in range(5):
        attempt(ADMIN_LOGIN if n % 2 else APP_LOGIN, operator.email, "wrong")
    assert admin_attempt(operator.email, PASSWORD)[1].status_code == 429
    assert attempt(APP_LOGIN, operator.email, PASSWORD)[1].status_code == 429


def test_after_unlock_login_the_admin_logs_in(operator):
    for _ in range(5):
        admin_attempt(operator.email, "wrong")
    call_command("unlock_login", operator.email, stdout=StringIO())
    client, response = admin_attempt(operator.email, PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(operator.pk)


def test_an_operator_lifts_a_lockout_in_the_admin(operator, owner):
    lock(APP_LOGIN, owner.email)
    admin = Client()
    admin.force_login(operator)
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert owner.email in listing.content.decode()
    (row,) = AccessAttempt.objects.filter(username=owner.email)
    confirm = admin.post(f"/admin/axes/accessattempt/{row.pk}/delete/", {"post": "yes"})
    assert confirm.status_code == 302
    assert attempt(APP_LOGIN, owner.email, PASSWORD)[1].status_code == 302


# --- owners lift it on their page ------------------------------------------------------------


def owners_page(owner) -> tuple[Client, str]:
    client = Client()
    client.force_login(owner)
    return client, client.get(reverse("api-keys")).content.decode()


def test_owners_see_their_locked_out_members_and_unlock_them(owner, manager):
    _, page = owners_page(owner)
    assert 'id="locked-out"' not in page
    lock(APP_LOGIN, manager.email)
    client, page = owners_page(owner)
    assert 'id="locked-out"' in page and manager.email in page
    response = client.post(reverse("unlock-login"), {"email": manager.email})
    assert response.status_code == 302
    assert f"{manager.email} can log in again." in client.get(reverse("api-keys")).content.decode()
    assert attempt(APP_LOGIN, manager.email, PASSWORD)[1].status_code == 302


def test_owners_cannot_unlock_anyone_outside_their_organization(owner, outsider):
    lock(APP_LOGIN, outsider.email)
    client, page = owners_page(owner)
    assert outsider.email not in page
    assert client.post(reverse("unlock-login"), {"email": outsider.email}).status_code == 404
    assert attempt(APP_LOGIN, outsider.email, PASSWORD)[1].status_code == 429


def test_managers_see_locked_out_members_on_the_queue_and_unlock_them(manager, staff):
    client = Client()
    client.force_login(manager)
    assert 'id="locked-out"' not in client.get(reverse("queue")).content.decode()
    lock(APP_LOGIN, staff.email)
    page = client.get(reverse("queue")).content.decode()
    assert 'id="locked-out"' in page and staff.email in page
    response = client.post(reverse("unlock-login"), {"email": staff.email})
    assert response.status_code == 302 and response["Location"] == reverse("queue")
    assert f"{staff.email} can log in again." in client.get(reverse("queue")).content.decode()
    assert attempt(APP_LOGIN, staff.email, PASSWORD)[1].status_code == 302


def test_staff_cannot_unlock(staff, manager):
    lock(APP_LOGIN, manager.email)
    client = Client()
    client.force_login(staff)
    assert client.post(reverse("unlock-login"), {"email": manager.email}).status_code == 403
    assert attempt(APP_LOGIN, manager.email, PASSWORD)[1].status_code == 429

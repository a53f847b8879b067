"""Password reset and change (accounts/password_views.py): links from SITE_URL, the same answer
for known and unknown emails, the rate limits, bad input as 400."""

import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client

from accounts.models import User
from accounts.password_views import PASSWORD_RESET_ADDRESS_LIMIT, PASSWORD_RESET_EMAIL_LIMIT
from tests.factories import UserFactory

NEW_PASSWORD = "a-fresh-flat-white-7"


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def ana(db):
    return UserFactory.create(email="ana@example.com")


def reset_link(message) -> str:
    match = re.search(r"https?://\S+/accounts/reset/\S+/", message.body)
    assert match, message.body
    return match.group(0)


def test_the_reset_email_links_to_site_url_not_the_requests_host(ana, settings):
    settings.SITE_URL = "https://cafe.example.com"
    settings.ALLOWED_HOSTS = ["*"]
    response = Client().post(
        "/accounts/password_reset/", {"email": "Ana@Example.com"}, HTTP_HOST="evil.example.net"
    )
    assert response.status_code == 302 and response["Location"] == "/accounts/password_reset/done/"
    (message,) = mail.outbox
    assert message.to == ["ana@example.com"]
    assert reset_link(message).startswith("https://cafe.example.com/accounts/reset/")
    assert "evil.example.net" not in message.body


def test_known_and_unknown_emails_get_the_same_answer(ana):
    known = Client().post("/accounts/password_reset/", {"email": "ana@example.com"})
    unknown = Client().post("/accounts/password_reset/", {"email": "nobody@example.com"})
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert len(mail.outbox) == 1
    done = Client().get(known["Location"])
    assert done.status_code == 200 and "If the email you entered has an account" in done.text


def test_following_the_link_sets_a_new_password_that_logs_in(ana):
    Client().post("/accounts/password_reset/", {"email": "ana@example.com"})
    link = reset_link(mail.outbox[0]).split("://", 1)[1].split("/", 1)[1]
    client = Client()
    landing = client.get(f"/{link}")
    assert landing.status_code == 302  # Django moves the token out of the URL, to the session
    form_url = landing["Location"]
    weak = client.post(form_url, {"new_password1": "short", "new_password2": "short"})
    assert weak.status_code == 400
    assert 'id="id_new_password2_error"' in weak.text and "too short" in weak.text
    done = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/accounts/reset/done/"
    ana.refresh_from_db()
    assert ana.check_password(NEW_PASSWORD)
    login = Client().post(
        "/accounts/login/", {"username": "ana@example.com", "password": NEW_PASSWORD}
    )
    assert login.status_code == 302
    again = Client().get(f"/{link}", follow=True)
    assert "This reset link does not work" in again.text  # used once


def test_a_bad_email_is_400_next_to_the_field(ana):
    response = Client().post("/accounts/password_reset/", {"email": "ana\u202e@example.com"})
    assert response.status_code == 400 and 'id="id_email_error"' in response.text
    assert mail.outbox == []


def test_one_email_gets_a_few_links_an_hour_then_the_same_answer_and_no_mail(ana):
    for _ in range(PASSWORD_RESET_EMAIL_LIMIT + 2):
        response = Client().post("/accounts/password_reset/", {"email": "ana@example.com"})
        assert response.status_code == 302
    assert len(mail.outbox) == PASSWORD_RESET_EMAIL_LIMIT


def test_one_address_is_refused_with_a_429_that_names_no_account(ana):
    client = Client()
    for n in range(PASSWORD_RESET_ADDRESS_LIMIT):
        assert (
            client.post("/accounts/password_reset/", {"email": f"p{n}@example.com"}).status_code
            == 302
        )
    refused = client.post("/accounts/password_reset/", {"email": "ana@example.com"})
    assert refused.status_code == 429 and refused["Retry-After"] == "3600"
    assert "ana@example.com" not in refused.text and "Too many reset requests" in refused.text
    assert mail.outbox == []
    other = Client(REMOTE_ADDR="10.0.0.9")
    assert other.post("/accounts/password_reset/", {"email": "ana@example.com"}).status_code == 302


def test_the_login_page_offers_the_reset(db):
    assert 'href="/accounts/password_reset/"' in Client().get("/accounts/login/").text


def test_password_change_needs_the_old_password(ana):
    client = Client()
    client.force_login(ana)
    wrong = client.post(
        "/accounts/password_change/",
        {"old_password": "nope", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert wrong.status_code == 400 and 'id="id_old_password_error"' in wrong.text
    done = client.post(
        "/accounts/password_change/",
        {"old_password": "pw-for-tests-1", "new_password1": NEW_PASSWORD,
         "new_password2": NEW_PASSWORD},
    )  # fmt: skip
    assert done.status_code == 302 and done["Location"] == "/accounts/password_change/done/"
    assert User.objects.get(pk=ana.pk).check_password(NEW_PASSWORD)
    assert client.get("/accounts/password_change/done/").status_code == 200  # still signed in


def test_password_change_sends_visitors_to_log_in(db):
    response = Client().get("/accounts/password_change/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_with_the_cache_down_the_reset_still_works(ana, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    response = Client().post("/accounts/password_reset/", {"email": "ana@example.com"})
    assert response.status_code == 302 and len(mail.outbox) == 1


def test_the_reset_email_leaves_after_the_answer_so_timing_says_nothing(ana, rf):
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.password_views import RateLimitedPasswordResetView

    answers = []
    for email in ("ana@example.com", "nobody@example.com"):
        request = rf.post("/accounts/password_reset/", {"email": email})
        request.session = SessionStore()
        request._messages = FallbackStorage(request)
        request._dont_enforce_csrf_checks = True
        answers.append(RateLimitedPasswordResetView.as_view()(request))
    assert [type(a) for a in answers] == [type(answers[0])] * 2
    assert [a["Location"] for a in answers] == ["/accounts/password_reset/done/"] * 2
    assert mail.outbox == []  # the answers are ready, nothing has been sent
    for answer in answers:
        answer.close()  # what the WSGI server does once it has written the answer
    assert [m.to for m in mail.outbox] == [["ana@example.com"]]

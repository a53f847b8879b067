"""Self-serve sign-up (/accounts/signup/, accounts/services/signup.py): a new organization,
its first location and its owner; open by default, only the first organization when
SIGNUP_OPEN=false; one account per email whatever races; rate-limited per address."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings

from accounts.errors import InvalidInput
from accounts.models import Location, Membership, Organization, Role, TeamAction, TeamEvent, User
from accounts.services.signup import EMAIL_TAKEN, SignupClosed, SignupInput, sign_up
from accounts.tenancy import SESSION_ORG_KEY
from tests.factories import OrganizationFactory, UserFactory

GOOD = {
    "organization_name": "Corner Cup",
    "country": "IE",
    "time_zone": "Europe/Dublin",
    "location_name": "Quay St",
    "owner_name": "Aoife Byrne",
    "email": "Aoife@Example.com",
    "password": "latte-art-2026",
}


@pytest.fixture(autouse=True)
def _fresh_rate_limit():
    """The suite's cache is the process's memory: each test starts its address's count anew."""
    cache.clear()


def signup_input(**changes) -> SignupInput:
    return SignupInput(**{**GOOD, **changes})


def test_the_sign_up_page_asks_for_the_business_and_the_owner(db):
    response = Client().get("/accounts/signup/")
    assert response.status_code == 200
    body = response.content.decode()
    for name in GOOD:
        assert f'name="{name}"' in body, name
    assert 'autocomplete="new-password"' in body
    assert '<label for="id_organization_name">' in body


def test_signing_up_creates_the_organization_its_location_and_owner_and_logs_in(db):
    client = Client()
    response = client.post("/accounts/signup/", GOOD)
    assert response.status_code == 302 and response["Location"] == "/settings/"
    org = Organization.objects.get()
    assert (org.name, org.slug, org.country, org.time_zone) == (
        "Corner Cup",
        "corner-cup",
        "IE",
        "Europe/Dublin",
    )
    [location] = Location.objects.filter(organization=org)
    assert (location.name, location.slug, location.time_zone) == (
        "Quay St",
        "quay-st",
        "Europe/Dublin",
    )
    user = User.objects.get()
    assert user.email == "aoife@example.com" and user.name == "Aoife Byrne"
    assert user.check_password("latte-art-2026")
    assert Membership.objects.get(user=user, organization=org).role == Role.OWNER
    [event] = TeamEvent.objects.filter(organization=org, action=TeamAction.SIGNED_UP)
    assert event.actor == user and event.subject == user
    # Logged in, in the new organization, on the settings page as its owner.
    assert client.session[SESSION_ORG_KEY] == org.pk
    page = client.get("/settings/")
    assert page.status_code == 200 and "Save settings" in page.content.decode()
    # The organization's setup hooks ran: it has its default playbooks.
    from recovery.models import Playbook

    assert Playbook.objects.filter(organization=org).exists()


def test_an_email_already_registered_gets_a_form_error_and_changes_nothing(db):
    UserFactory(email="aoife@example.com")
    response = Client().post("/accounts/signup/", GOOD)
    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="id_email_error"' in body
    assert "log in, or reset your password" in body
    assert not Organization.objects.exists()
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("password", "short"),
        ("password", "12345678901"),
        ("password", "password"),
        ("password", "aoife@example.com"),  # like the email
        ("email", "not-an-email"),
        ("email", "a@b@example.com"),
        ("email", "aoife@example\u202e.com"),
        ("organization_name", ""),
        ("organization_name", "Corner\u202eCup"),
        ("location_name", ""),
        ("location_name", "Quay\x00St"),
        ("owner_name", ""),
        ("owner_name", "Aoife\nByrne"),
        ("country", "XX"),
        ("time_zone", "Mars/Olympus"),
    ],
)
def test_bad_input_rerenders_with_the_error_next_to_the_field(db, field, value):
    response = Client().post("/accounts/signup/", {**GOOD, field: value})
    assert response.status_code == 400
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not Organization.objects.exists() and not User.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_sign_ups_racing_with_one_email_make_one_account():
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(n: int) -> None:
        try:
            barrier.wait()
            sign_up(data=signup_input(organization_name=f"Cup {n}"))
            outcomes.append("created")
        except InvalidInput as exc:
            outcomes.append(exc.field or "")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created", "email"]
    assert User.objects.filter(email="aoife@example.com").count() == 1
    # The refused sign-up left no organization behind.
    assert Organization.objects.count() == 1
    assert Membership.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_sign_ups_of_one_business_name_at_once_get_two_slugs(monkeypatch):
    """The other sign-up commits "corner-cup" between our choosing it and our insert: ours
    picks again instead of a 500."""
    import accounts.services as services

    choose = services._unique_slug
    raced: list[str] = []

    def racing(base: str, taken: set[str]) -> str:
        slug = choose(base, taken)
        if base == "Corner Cup" and not raced:
            raced.append(slug)

            def rival_signs_up() -> None:
                Organization.objects.create(name="Corner Cup", slug=slug)
                connection.close()

            rival = threading.Thread(target=rival_signs_up)
            rival.start()
            rival.join()
        return slug

    monkeypatch.setattr(services, "_unique_slug", racing)
    sign_up(data=signup_input(organization_name="Corner Cup"))
    assert raced == ["corner-cup"]
    assert sorted(Organization.objects.values_list("slug", flat=True)) == [
        "corner-cup",
        "corner-cup-2",
    ]


def test_the_service_says_email_taken_in_words_that_reveal_nothing_more(db):
    UserFactory(email="aoife@example.com")
    with pytest.raises(InvalidInput) as caught:
        sign_up(data=signup_input())
    assert (caught.value.field, caught.value.code) == ("email", "email_taken")
    assert caught.value.message == EMAIL_TAKEN


@override_settings(SIGNUP_OPEN=False)
def test_a_closed_install_signs_up_its_first_organization_only(db):
    client = Client()
    assert client.get("/accounts/signup/").status_code == 200
    assert client.post("/accounts/signup/", GOOD).status_code == 302
    other = Client()
    assert other.get("/accounts/signup/").status_code == 404
    response = other.post("/accounts/signup/", {**GOOD, "email": "someone@example.com"})
    assert response.status_code == 404
    assert Organization.objects.count() == 1


@override_settings(SIGNUP_OPEN=False)
def test_a_closed_install_with_an_organization_hides_sign_up_from_the_login_page(db):
    assert "/accounts/signup/" in Client().get("/accounts/login/").content.decode()
    OrganizationFactory()
    assert "/accounts/signup/" not in Client().get("/accounts/login/").content.decode()
    assert Client().get("/accounts/signup/").status_code == 404


def test_the_login_page_links_to_sign_up_when_it_is_open(db):
    OrganizationFactory()
    assert 'href="/accounts/signup/"' in Client().get("/accounts/login/").content.decode()


@override_settings(SIGNUP_RATE_LIMIT=2)
def test_sign_up_posts_are_limited_per_address_with_a_clear_429(db):
    client = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(2):
        assert client.post("/accounts/signup/", {**GOOD, "password": "x"}).status_code == 400
    response = client.post("/accounts/signup/", GOOD)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many sign-ups from this network" in response.content.decode()
    assert not Organization.objects.exists()
    # Another address is not held up.
    assert Client(REMOTE_ADDR="203.0.113.10").post("/accounts/signup/", GOOD).status_code == 302


def test_a_signed_in_user_adds_an_organization_to_their_account(owner, org):
    client = Client()
    client.force_login(owner)
    page = client.get("/accounts/signup/").content.decode()
    assert 'name="email"' not in page and "Add an organization" in page
    data = {k: GOOD[k] for k in ("organization_name", "country", "time_zone", "location_name")}
    response = client.post("/accounts/signup/", {**data, "organization_name": "Second Cup"})
    assert response.status_code == 302
    second = Organization.objects.get(name="Second Cup")
    assert Membership.objects.get(user=owner, organization=second).role == Role.OWNER
    assert User.objects.filter(email=owner.email).count() == 1
    assert client.session[SESSION_ORG_KEY] == second.pk


@pytest.mark.django_db(transaction=True)
@override_settings(SIGNUP_OPEN=False)
def test_two_first_sign_ups_racing_on_a_closed_install_make_one_organization():
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(n: int) -> None:
        try:
            barrier.wait()
            sign_up(data=signup_input(email=f"first{n}@example.com"))
            outcomes.append("created")
        except SignupClosed:
            outcomes.append("closed")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["closed", "created"]
    assert Organization.objects.count() == 1 and User.objects.count() == 1

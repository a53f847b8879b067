"""The API keys page: owners create (shown once) and revoke keys; nobody else sees it."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import ApiKey
from accounts.services import create_api_key
from tests.conftest import key_client
from tests.factories import UserFactory

KEY_PATTERN = re.compile(r"cbk_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}")
LOCATIONS_API = "/api/v1/locations/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form_id(client: Client) -> str:
    page = client.get(reverse("api-keys")).content.decode()
    match = re.search(r'name="form_id" value="([^"]+)"', page)
    assert match, "the form carries its one-time id"
    return match[1]


def create_key(client: Client, name: str, location: str = "") -> tuple[str, str]:
    data = {"name": name, "location": location, "form_id": form_id(client)}
    response = client.post(reverse("api-keys"), data)
    assert response.status_code == 200  # shown in the answer to the POST, kept nowhere
    assert "no-store" in response["Cache-Control"]
    body = response.content.decode()
    match = re.search(r'<code id="new-key">([^<]+)</code>', body)
    assert match, "the new key is shown in the response"
    return match[1], body


def test_the_owner_sees_the_api_keys_page(owner, org_key):
    response = logged_in(owner).get(reverse("api-keys"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "<h1>API keys</h1>" in body
    assert "HQ" in body  # the existing key, by name
    assert "cbk_{}_".format(org_key.split("_", 2)[1]) in body  # …and its prefix
    assert org_key not in body  # never the secret
    assert 'id="new-key"' not in body


def test_the_nav_links_to_the_api_keys_page_for_owners_only(owner, manager):
    assert 'href="/accounts/api-keys/"' in logged_in(owner).get("/customers/").content.decode()
    assert (
        'href="/accounts/api-keys/"' not in logged_in(manager).get("/customers/").content.decode()
    )


def test_a_created_key_is_shown_once_and_then_only_its_prefix(owner, org):
    client = logged_in(owner)
    raw_key, body = create_key(client, "Till 2")
    assert KEY_PATTERN.fullmatch(raw_key)
    api_key = ApiKey.objects.get(organization=org, name="Till 2")
    assert api_key.display_prefix == raw_key[: len(api_key.display_prefix)]
    assert api_key.created_by == owner
    assert api_key.location is None
    assert raw_key not in api_key.hashed_key
    assert "Copy this key now" in body

    later = client.get(reverse("api-keys")).content.decode()  # a reload
    assert raw_key not in later
    assert ApiKey.objects.filter(name="Till 2").count() == 1
    assert raw_key.split("_", 2)[2] not in later  # not the secret part either
    assert api_key.display_prefix in later
    assert "Till 2" in later


def test_a_created_key_authenticates_against_the_api(owner, org, main_st, harbour):
    raw_key, _ = create_key(logged_in(owner), "Till 2")
    response = key_client(raw_key).get(LOCATIONS_API)
    assert response.status_code == 200
    assert {loc["slug"] for loc in response.json()["results"]} == {"main-st", "harbour-rd"}


def test_a_key_limited_to_a_location_sees_only_that_location(owner, org, main_st, harbour):
    raw_key, _ = create_key(logged_in(owner), "Main St till 2", location=str(main_st.pk))
    assert ApiKey.objects.get(name="Main St till 2").location == main_st
    response = key_client(raw_key).get(LOCATIONS_API)
    assert response.status_code == 200
    assert [loc["slug"] for loc in response.json()["results"]] == ["main-st"]


def test_a_key_cannot_be_limited_to_another_organizations_location(owner, org, other_location):
    client = logged_in(owner)
    response = client.post(
        reverse("api-keys"),
        {"name": "Sneaky", "location": str(other_location.pk), "form_id": form_id(client)},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="new-key"' not in body
    assert "errorlist" in body
    assert not ApiKey.objects.filter(name="Sneaky").exists()


def test_a_key_needs_a_name(owner, org):
    client = logged_in(owner)
    response = client.post(
        reverse("api-keys"), {"name": "", "location": "", "form_id": form_id(client)}
    )
    assert response.status_code == 200
    assert 'id="new-key"' not in response.content.decode()
    assert not ApiKey.objects.filter(organization=org).exists()


def test_revoking_a_key_makes_the_api_answer_401(owner, org):
    client = logged_in(owner)
    raw_key, _ = create_key(client, "Till 2")
    api = key_client(raw_key)
    assert api.get(LOCATIONS_API).status_code == 200
    api_key = ApiKey.objects.get(name="Till 2")

    response = client.post(reverse("api-key-revoke", args=[api_key.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("api-keys")
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None

    assert api.get(LOCATIONS_API).status_code == 401
    page = client.get(reverse("api-keys")).content.decode()
    assert "Revoked Till 2." in page
    assert "revoked" in page

    again = client.post(reverse("api-key-revoke", args=[api_key.pk]))  # safe to repeat
    assert again.status_code == 302
    assert api.get(LOCATIONS_API).status_code == 401


def test_revoking_is_a_post(owner, org):
    api_key, raw_key = create_api_key(organization=org, name="Till 2")
    response = logged_in(owner).get(reverse("api-key-revoke", args=[api_key.pk]))
    assert response.status_code == 405
    assert key_client(raw_key).get(LOCATIONS_API).status_code == 200


@pytest.mark.parametrize("who", ["manager", "staff"])
def test_managers_and_staff_get_the_403_page_on_the_api_keys_page(request, org, org_key, who):
    user = request.getfixturevalue(who)
    client = logged_in(user)
    page = client.get(reverse("api-keys"))
    assert page.status_code == 403
    assert "This page is for owners." in page.content.decode()
    assert 'href="/pos/"' in page.content.decode()  # the way back to the till
    # Not the whole page: a random CSRF token may hold "HQ".
    main = page.content.decode().split("<main>", 1)[1]
    assert "HQ" not in main
    assert client.post(reverse("api-keys"), {"name": "Mine"}).status_code == 403
    assert not ApiKey.objects.filter(name="Mine").exists()
    api_key = ApiKey.objects.get(name="HQ")
    assert client.post(reverse("api-key-revoke", args=[api_key.pk])).status_code == 403
    api_key.refresh_from_db()
    assert api_key.revoked_at is None
    assert key_client(org_key).get(LOCATIONS_API).status_code == 200


def test_an_outsider_cannot_revoke_another_organizations_key(outsider, org, org_key):
    api_key = ApiKey.objects.get(name="HQ")
    client = logged_in(outsider)
    assert client.post(reverse("api-key-revoke", args=[api_key.pk])).status_code == 404
    api_key.refresh_from_db()
    assert api_key.revoked_at is None
    assert key_client(org_key).get(LOCATIONS_API).status_code == 200
    # …and does not see it listed on their own page.
    body = client.get(reverse("api-keys")).content.decode()
    # As a cell of the list: a bare "HQ" can turn up inside a random CSRF token.
    assert "<td>HQ</td>" not in body
    assert api_key.display_prefix not in body
    assert ApiKey.objects.get(name="HQ").organization_id == org.pk


def test_a_user_without_a_membership_gets_404(db, org_key):
    client = logged_in(UserFactory())
    assert client.get(reverse("api-keys")).status_code == 404
    api_key = ApiKey.objects.get(name="HQ")
    assert client.post(reverse("api-key-revoke", args=[api_key.pk])).status_code == 404


@pytest.mark.django_db
def test_the_api_keys_page_requires_login():
    response = Client().get(reverse("api-keys"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert Client().post(reverse("api-keys"), {"name": "x"}).status_code == 302
    assert not ApiKey.objects.exists()


def test_owners_name_the_pos_origins_that_may_embed_the_sidebar(owner, manager, org):
    url = reverse("pos-embedding")
    client = logged_in(owner)
    client.post(url, {"origins": "https://pos.example.com\nhttps://till.example.org"})
    org.refresh_from_db()
    assert org.pos_embed_origins.split() == ["https://pos.example.com", "https://till.example.org"]
    client.post(url, {"origins": "javascript:alert(1)"})
    org.refresh_from_db()
    assert "javascript" not in org.pos_embed_origins  # refused, nothing changed
    assert logged_in(manager).post(url, {"origins": ""}).status_code == 403


def test_reposting_the_form_that_created_a_key_creates_no_second_one(owner, org):
    """A reload of the page that showed the key re-posts its form: nothing new, and it says so."""
    client = logged_in(owner)
    data = {"name": "Till 2", "location": "", "form_id": form_id(client)}
    first = client.post(reverse("api-keys"), data).content.decode()
    raw_key = re.search(r'<code id="new-key">([^<]+)</code>', first)
    assert raw_key
    again = client.post(reverse("api-keys"), data)
    assert again.status_code == 200
    body = again.content.decode()
    assert ApiKey.objects.filter(organization=org).count() == 1
    assert 'id="new-key"' not in body and raw_key[1] not in body
    assert "This form already created Till 2" in body
    assert "no-store" in again["Cache-Control"]


def test_a_form_id_that_was_not_signed_here_creates_nothing(owner, org):
    client = logged_in(owner)
    forged = {"name": "Till 2", "location": "", "form_id": "made-up:value:here"}
    response = client.post(reverse("api-keys"), forged)
    assert response.status_code == 200
    assert 'id="new-key"' not in response.content.decode()
    assert "create the key again" in response.content.decode()
    assert not ApiKey.objects.filter(organization=org).exists()


def test_the_page_title_is_text(owner, org_key):
    body = logged_in(owner).get(reverse("api-keys")).content.decode()
    assert "<title>API keys · Comeback</title>" in body

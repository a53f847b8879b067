"""API keys: hashed at rest, shown once, scoped, revocable; and the operator commands."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import ApiKey, Location, Membership, Organization, Role, User
from accounts.services import create_api_key, revoke_api_key
from cxcore.models import Episode
from tests.conftest import key_client

KEY_SHAPE = re.compile(r"^cbk_([0-9a-f]{8})_([A-Za-z0-9_-]{40,})$")


def secret_of(raw: str) -> str:
    return raw.split("_", 2)[2]


def log_visit(client, **fields):
    body = {"customer": {"phone": "07400 123456"}, "kind": "visit", **fields}
    return client.post("/api/v1/episodes/", data=json.dumps(body), content_type="application/json")


# --- stored hashed, prefix visible -----------------------------------------------------------


def test_a_new_key_has_the_documented_shape_and_a_visible_prefix(org, main_st):
    api_key, raw = create_api_key(organization=org, name="Till 1", location=main_st)
    match = KEY_SHAPE.match(raw)
    assert match, raw
    assert api_key.prefix == match.group(1)
    assert api_key.display_prefix == f"cbk_{api_key.prefix}_"
    assert raw.startswith(api_key.display_prefix)
    assert str(api_key) == f"Till 1 (cbk_{api_key.prefix}_…)"


def test_keys_are_stored_hashed_and_the_raw_key_is_in_no_column(org, main_st):
    api_key, raw = create_api_key(organization=org, name="Till 1", location=main_st)
    api_key.refresh_from_db()
    assert api_key.hashed_key != raw
    assert re.fullmatch(r"[0-9a-f]{64}", api_key.hashed_key)
    secret = secret_of(raw)
    for field in ApiKey._meta.concrete_fields:
        value = str(getattr(api_key, field.attname))
        assert raw not in value, field.name
        assert secret not in value, field.name
    # And not in the row as the database has it, whatever the model says.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT row_to_json(k)::text FROM accounts_apikey k WHERE id = %s", [api_key.pk]
        )
        (row,) = cursor.fetchone()
    assert secret not in row
    assert api_key.prefix in row


def test_two_keys_never_share_a_prefix_or_a_secret(org):
    keys = [create_api_key(organization=org, name=f"Till {n}") for n in range(20)]
    assert len({k.prefix for k, _ in keys}) == 20
    assert len({secret_of(raw) for _, raw in keys}) == 20


def test_a_key_only_matches_its_own_raw_value(org):
    api_key, raw = create_api_key(organization=org, name="Till 1")
    _other_key, other_raw = create_api_key(organization=org, name="Till 2")
    assert api_key.matches(raw)
    assert not api_key.matches(other_raw)
    assert not api_key.matches(raw + "x")
    assert not api_key.matches(api_key.hashed_key)  # the hash is not a password


def test_a_key_cannot_be_scoped_to_another_orgs_location(org, other_location):
    count = ApiKey.objects.count()
    with pytest.raises(ValueError):
        create_api_key(organization=org, name="Sneaky", location=other_location)
    assert ApiKey.objects.count() == count


def test_a_key_with_the_right_prefix_but_another_secret_is_refused(org, main_st):
    api_key, raw = create_api_key(organization=org, name="Till 1", location=main_st)
    forged = f"cbk_{api_key.prefix}_{'A' * len(secret_of(raw))}"
    assert key_client(forged).get("/api/v1/locations/").status_code == 401
    assert key_client(raw).get("/api/v1/locations/").status_code == 200


# --- last_used_at ----------------------------------------------------------------------------


def _touch_updates(captured) -> list[str]:
    return [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith("UPDATE") and "accounts_apikey" in q["sql"]
    ]


def test_last_used_at_is_set_on_first_use(org, main_st):
    api_key, raw = create_api_key(organization=org, name="Till 1")
    assert api_key.last_used_at is None
    before = timezone.now()
    assert key_client(raw).get("/api/v1/locations/").status_code == 200
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None
    assert before <= api_key.last_used_at <= timezone.now()


def test_last_used_at_is_written_at_most_once_a_minute(org, main_st):
    api_key, raw = create_api_key(organization=org, name="Till 1")
    client = key_client(raw)
    client.get("/api/v1/locations/")
    api_key.refresh_from_db()
    first = api_key.last_used_at

    with CaptureQueriesContext(connection) as captured:
        for _ in range(3):
            assert client.get("/api/v1/locations/").status_code == 200
    assert _touch_updates(captured) == []
    api_key.refresh_from_db()
    assert api_key.last_used_at == first

    # Once the last recorded use is over a minute old, the next use records again.
    stale = timezone.now() - timedelta(minutes=2)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=stale)
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/api/v1/locations/").status_code == 200
    assert len(_touch_updates(captured)) == 1
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None
    assert api_key.last_used_at > stale + timedelta(minutes=1)


def test_a_refused_key_does_not_record_a_use(org):
    api_key, raw = create_api_key(organization=org, name="Till 1")
    revoke_api_key(api_key=api_key)
    assert key_client(raw).get("/api/v1/locations/").status_code == 401
    api_key.refresh_from_db()
    assert api_key.last_used_at is None


# --- revocation ------------------------------------------------------------------------------


def test_revoke_is_compare_and_swap(org):
    api_key, _raw = create_api_key(organization=org, name="Till 1")
    stale_copy = ApiKey.objects.get(pk=api_key.pk)
    first_at = timezone.now() - timedelta(minutes=5)

    assert revoke_api_key(api_key=api_key, now=first_at) is True
    assert api_key.revoked_at == first_at
    assert not api_key.is_active
    # A second call, even from a copy loaded before the first, changes nothing.
    assert revoke_api_key(api_key=stale_copy) is False
    assert revoke_api_key(api_key=api_key) is False
    stale_copy.refresh_from_db()
    assert stale_copy.revoked_at == first_at
    assert ApiKey.objects.active().filter(pk=api_key.pk).count() == 0


def test_a_revoked_key_stops_working_at_once_and_other_keys_do_not(org, main_st):
    api_key, raw = create_api_key(organization=org, name="Till 1")
    _, other_raw = create_api_key(organization=org, name="Till 2")
    client = key_client(raw)
    assert log_visit(client).status_code == 201
    revoke_api_key(api_key=api_key)
    count = Episode.objects.count()
    response = log_visit(client)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers
    assert Episode.objects.count() == count
    assert log_visit(key_client(other_raw)).status_code == 201


def test_episodes_written_by_a_key_name_it_as_author(org, main_st):
    api_key, raw = create_api_key(organization=org, name="Till 1", location=main_st)
    response = log_visit(key_client(raw))
    assert response.status_code == 201
    episode = Episode.objects.get(pk=response.json()["id"])
    assert episode.author_api_key_id == api_key.pk
    assert episode.author_user_id is None
    assert episode.source == "api"


# --- create_org ------------------------------------------------------------------------------


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_create_org_prints_only_the_slug():
    out, err = run("create_org", "Name", "--location", "Main St", "--owner-email", "x@example.com")
    slug = out.strip()
    assert out == slug + "\n"
    # the new owner has no password yet: the hint goes to stderr, never into stdout
    assert (
        err == "x@example.com has no password yet: python manage.py changepassword x@example.com\n"
    )
    _, err_with_password = run(
        "create_org", "Other", "--owner-email", "z@example.com", "--owner-password", "s3cret-pass-9"
    )
    assert err_with_password == ""
    assert re.fullmatch(r"[a-z0-9-]+", slug)
    org = Organization.objects.get(slug=slug)
    assert org.name == "Name"
    assert list(Location.objects.filter(organization=org).values_list("slug", flat=True)) == [
        "main-st"
    ]
    membership = Membership.objects.get(organization=org)
    assert membership.user.email == "x@example.com"
    assert membership.role == Role.OWNER


@pytest.mark.django_db
def test_create_org_twice_gives_two_slugs_and_reuses_the_owner():
    first, _ = run("create_org", "Name", "--location", "Main St", "--owner-email", "x@example.com")
    second, _ = run("create_org", "Name", "--location", "Main St", "--owner-email", "X@EXAMPLE.COM")
    assert first.strip() != second.strip()
    assert User.objects.filter(email__iexact="x@example.com").count() == 1
    user = User.objects.get(email="x@example.com")
    assert Membership.objects.filter(user=user, role=Role.OWNER).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--country", "ZZ"], id="unknown-country"),
        pytest.param(["--time-zone", "Mars/Olympus"], id="unknown-time-zone"),
    ],
)
def test_create_org_with_bad_settings_is_a_command_error_and_creates_nothing(args):
    with pytest.raises(CommandError):
        run(
            "create_org", "Name", "--location", "Main St", "--owner-email", "new@example.com", *args
        )
    assert Organization.objects.count() == 0
    assert Location.objects.count() == 0
    assert not User.objects.filter(email="new@example.com").exists()


# --- create_api_key --------------------------------------------------------------------------


@pytest.fixture
def made_org(db) -> str:
    out, _ = run("create_org", "Name", "--location", "Main St", "--location", "Harbour Rd")
    return out.strip()


def test_create_api_key_prints_only_a_working_key(made_org):
    out, err = run("create_api_key", "--org", made_org, "--location", "main-st", "--name", "X")
    raw = out.strip()
    assert out == raw + "\n"
    assert err == ""
    shape = KEY_SHAPE.match(raw)
    assert shape, out
    api_key = ApiKey.objects.get(prefix=shape.group(1))
    assert api_key.name == "X"
    assert api_key.location is not None
    assert api_key.location.slug == "main-st"
    assert api_key.organization.slug == made_org
    assert api_key.hashed_key != raw

    client = key_client(raw)
    response = log_visit(client)
    assert response.status_code == 201, response.content[:500]
    assert response.json()["location"] == "main-st"
    assert Episode.objects.get(pk=response.json()["id"]).organization.slug == made_org
    # Limited to its location, like any scoped key.
    assert log_visit(client, location="harbour-rd").status_code == 404


def test_create_api_key_without_a_location_makes_an_org_wide_key(made_org):
    out, _ = run("create_api_key", "--org", made_org, "--name", "HQ")
    client = key_client(out.strip())
    for slug in ("main-st", "harbour-rd"):
        response = log_visit(client, location=slug)
        assert response.status_code == 201, response.content[:500]
        assert response.json()["location"] == slug


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--org", "no-such-org", "--name", "X"], id="unknown-org"),
        pytest.param(
            ["--org", "{org}", "--location", "nowhere", "--name", "X"], id="unknown-location"
        ),
        pytest.param(
            ["--org", "{org}", "--location", "elsewhere", "--name", "X"], id="other-orgs-location"
        ),
    ],
)
def test_create_api_key_for_something_unknown_is_a_command_error(made_org, other_location, args):
    count = ApiKey.objects.count()
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("create_api_key", *[a.format(org=made_org) for a in args], stdout=out)
    assert out.getvalue() == ""
    assert ApiKey.objects.count() == count

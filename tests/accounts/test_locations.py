"""Locations: owners add, rename, re-zone, archive and restore them (accounts/services/
locations.py, /settings/locations/). An archived location keeps its history and takes no new
episodes on any write path: the API (one and bulk), the till, a key bound to it."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.errors import ConflictError
from accounts.models import Location, TeamAction, TeamEvent
from accounts.services import create_api_key
from accounts.services.locations import (
    add_location,
    archive_location,
    change_location,
    restore_location,
)
from accounts.tenancy import SESSION_LOCATION_KEY
from cxcore.models import Episode
from cxcore.services import EpisodeInput, record_episode
from tests.conftest import key_client
from tests.factories import LocationFactory, OrganizationFactory


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_json(client, url, value):
    return client.post(url, data=json.dumps(value), content_type="application/json")


def events(org, action):
    return list(TeamEvent.objects.filter(organization=org, action=action))


# --- the service -------------------------------------------------------------------------


def test_adding_a_location_makes_a_slug_unique_in_the_organization(org, main_st, owner):
    first = add_location(organization=org, actor=owner, name="Main St", time_zone="Europe/Paris")
    second = add_location(organization=org, actor=owner, name="Main St", time_zone="UTC")
    assert (main_st.slug, first.slug, second.slug) == ("main-st", "main-st-2", "main-st-3")
    assert first.time_zone == "Europe/Paris" and first.is_active
    # Another organization's slugs are theirs: the same name there starts from the bare slug.
    other = OrganizationFactory.create()
    assert add_location(organization=other, actor=None, name="Main St", time_zone="UTC").slug == (
        "main-st"
    )
    [event, _] = events(org, TeamAction.LOCATION_ADDED)
    assert event.actor == owner and event.subject_label == "Main St"
    assert event.detail["slug"] == "main-st-3"


def test_a_name_without_letters_still_gets_a_slug(org, owner):
    assert add_location(organization=org, actor=owner, name="☕", time_zone="UTC").slug == (
        "location"
    )


@pytest.mark.parametrize(
    ("name", "time_zone", "field"),
    [
        ("", "UTC", "name"),
        ("   ", "UTC", "name"),
        ("Main\u202eSt", "UTC", "name"),
        ("Main\nSt", "UTC", "name"),
        ("x" * 201, "UTC", "name"),
        ("Harbour", "Mars/Olympus", "time_zone"),
    ],
)
def test_bad_location_input_is_refused_naming_the_field_and_changes_nothing(
    org, owner, name, time_zone, field
):
    from accounts.errors import DomainError

    before = list(Location.objects.filter(organization=org).values())
    with pytest.raises(DomainError) as caught:
        add_location(organization=org, actor=owner, name=name, time_zone=time_zone)
    assert caught.value.field == field
    assert list(Location.objects.filter(organization=org).values()) == before
    assert not TeamEvent.objects.exists()


def test_renaming_keeps_the_slug_and_records_old_and_new(org, main_st, owner):
    changed = change_location(
        location=main_st, actor=owner, name="Main Street", time_zone="Europe/Dublin"
    )
    main_st.refresh_from_db()
    assert (main_st.name, main_st.slug, main_st.time_zone) == (
        "Main Street",
        "main-st",
        "Europe/Dublin",
    )
    assert changed == {
        "name": {"old": "Main St", "new": "Main Street"},
        "time_zone": {"old": "Europe/London", "new": "Europe/Dublin"},
    }
    [event] = events(org, TeamAction.LOCATION_CHANGED)
    assert event.detail["changes"] == changed
    # Saving the same again changes and records nothing.
    assert (
        change_location(
            location=main_st, actor=owner, name="Main Street", time_zone="Europe/Dublin"
        )
        == {}
    )
    assert len(events(org, TeamAction.LOCATION_CHANGED)) == 1


def test_archiving_keeps_the_history_and_restoring_brings_it_back(org, main_st, harbour, owner):
    episode = record_episode(
        organization=org,
        data=EpisodeInput(
            kind="visit", identifiers={"phone": "07400 111111"}, location=harbour, experience=1
        ),
    ).episode
    now = timezone.now()
    assert archive_location(location=harbour, actor=owner, now=now) is True
    harbour.refresh_from_db()
    assert not harbour.is_active and harbour.archived_at == now
    episode.refresh_from_db()
    assert episode.location_id == harbour.pk  # the history still says where
    assert archive_location(location=harbour, actor=owner) is False  # once
    assert len(events(org, TeamAction.LOCATION_ARCHIVED)) == 1

    assert restore_location(location=harbour, actor=owner) is True
    harbour.refresh_from_db()
    assert harbour.is_active and harbour.archived_at is None
    assert restore_location(location=harbour, actor=owner) is False
    assert len(events(org, TeamAction.LOCATION_RESTORED)) == 1


def test_the_last_active_location_cannot_be_archived(org, main_st, harbour, owner):
    archive_location(location=harbour, actor=owner)
    with pytest.raises(ConflictError) as caught:
        archive_location(location=main_st, actor=owner)
    assert caught.value.field == "location"
    main_st.refresh_from_db()
    assert main_st.is_active


@pytest.mark.django_db(transaction=True)
def test_two_owners_archiving_the_last_two_at_once_leave_one_active():
    org = OrganizationFactory.create()
    first, second = LocationFactory(organization=org), LocationFactory(organization=org)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def archive(location):
        try:
            barrier.wait()
            archive_location(location=location, actor=None)
            outcomes.append("archived")
        except ConflictError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=archive, args=(loc,)) for loc in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["archived", "refused"]
    assert Location.objects.filter(organization=org, is_active=True).count() == 1


# --- an archived location takes no new episodes -------------------------------------------


@pytest.fixture
def archived_harbour(org, harbour, owner):
    archive_location(location=harbour, actor=owner)
    return harbour


def test_the_api_refuses_an_episode_at_an_archived_location_naming_location(api, archived_harbour):
    body = {"customer": {"phone": "07400 123456"}, "kind": "visit", "location": "harbour-rd"}
    response = post_json(api, "/api/v1/episodes/", body)
    assert response.status_code == 404, response.content
    error = response.json()["errors"][0]
    assert (error["field"], error["code"]) == ("location", "location_archived")
    assert "archived" in error["message"]
    assert not Episode.objects.exists()


def test_bulk_refuses_the_items_at_an_archived_location_alone(api, archived_harbour):
    items = [
        {"customer": {"phone": "07400 123456"}, "kind": "visit", "location": "main-st"},
        {"customer": {"phone": "07400 123457"}, "kind": "visit", "location": "harbour-rd"},
    ]
    response = post_json(api, "/api/v1/episodes/bulk/", {"episodes": items})
    assert response.status_code == 200
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["created", "error"]
    assert body["results"][1]["errors"][0]["field"] == "location"
    assert list(Episode.objects.values_list("location__slug", flat=True)) == ["main-st"]


def test_a_key_bound_to_an_archived_location_stops_writing_until_restored(
    org, main_st, harbour, owner
):
    _key, raw = create_api_key(organization=org, name="Harbour till", location=harbour)
    client = key_client(raw)
    body = {"customer": {"phone": "07400 123456"}, "kind": "visit"}
    archive_location(location=harbour, actor=owner)

    response = post_json(client, "/api/v1/episodes/", body)
    assert response.status_code == 404
    assert response.json()["errors"][0]["field"] == "location"
    response = post_json(client, "/api/v1/episodes/bulk/", {"episodes": [body]})
    assert response.json()["results"][0]["errors"][0]["field"] == "location"
    # Nor may it name another location: it is bound to its own.
    response = post_json(client, "/api/v1/episodes/", {**body, "location": "main-st"})
    assert response.status_code == 404
    assert not Episode.objects.exists()
    # Reading goes on: the history is still the organization's.
    assert client.get("/api/v1/customers/").status_code == 200

    restore_location(location=harbour, actor=owner)
    assert post_json(client, "/api/v1/episodes/", body).status_code == 201


def test_the_till_cannot_choose_an_archived_location(staff, main_st, archived_harbour):
    client = logged_in(staff)
    assert client.post("/pos/location/", {"location": "harbour-rd"}).status_code == 404
    assert client.session.get(SESSION_LOCATION_KEY) is None


def test_a_till_left_on_a_location_that_is_then_archived_logs_nothing_there(
    org, owner, main_st, harbour
):
    customer_id = record_episode(
        organization=org,
        data=EpisodeInput(kind="visit", identifiers={"phone": "07400 111111"}, location=main_st),
    ).episode.customer_id
    client = logged_in(owner)
    assert client.post("/pos/location/", {"location": "harbour-rd"}).status_code == 302
    archive_location(location=harbour, actor=owner)

    response = client.post(
        f"/pos/customers/{customer_id}/log/", {"kind": "note", "summary": "Likes oat milk"}
    )
    assert response.status_code == 200
    note = Episode.objects.get(kind="note")
    # The session's archived choice is dropped: the only active location is the till's now.
    assert note.location_id == main_st.pk
    assert not Episode.objects.filter(location=harbour).exists()


def test_no_write_path_records_at_an_archived_location(org, archived_harbour):
    """Below the API's slugs: the till, a case's follow-up, a connector or an import hand
    record_episode a Location, and it refuses an archived one itself."""
    from accounts.errors import NotFoundError
    from cxcore.services import record_episodes_bulk

    visit = EpisodeInput(kind="visit", identifiers={"card": "A1"}, location=archived_harbour)
    with pytest.raises(NotFoundError) as caught:
        record_episode(organization=org, data=visit)
    assert (caught.value.field, caught.value.code) == ("location", "location_archived")
    (result,) = record_episodes_bulk(organization=org, items=[visit])
    assert result.status == "error" and result.error is not None
    assert result.error.code == "location_archived"
    assert not Episode.objects.filter(location=archived_harbour).exists()


def test_a_case_opened_at_a_location_since_archived_is_still_followed_up(
    org, main_st, harbour, owner
):
    from datetime import timedelta as td

    from recovery.events import Actor
    from recovery.models import RecoveryCase
    from recovery.services import create_default_playbooks, resolve_case
    from recovery.sweep import sweep_recovery

    create_default_playbooks(organization=org)
    complaint = record_episode(
        organization=org,
        data=EpisodeInput(kind="complaint", identifiers={"card": "B2"}, experience=-2,
                          summary="Cold soup", location=harbour),
    ).episode  # fmt: skip
    sweep_recovery(now=complaint.occurred_at + td(hours=3))
    case = RecoveryCase.objects.get(customer_id=complaint.customer_id)
    archive_location(location=harbour, actor=owner)
    resolve_case(case=case, actor=Actor(user=owner), note="Called her back")
    follow = Episode.objects.filter(customer_id=complaint.customer_id).latest("pk")
    assert follow.kind == "recovery" and follow.location_id is None


def test_the_api_lists_only_active_locations(api, archived_harbour):
    response = api.get("/api/v1/locations/")
    assert {loc["slug"] for loc in response.json()["results"]} == {"main-st"}


# --- the pages ----------------------------------------------------------------------------


def test_the_owner_adds_a_location_from_the_page(owner, org, main_st, harbour):
    client = logged_in(owner)
    response = client.post(
        "/settings/locations/", {"name": "Quay Kiosk", "time_zone": "Europe/Dublin"}
    )
    assert response.status_code == 302
    location = Location.objects.get(organization=org, name="Quay Kiosk")
    assert (location.slug, location.time_zone) == ("quay-kiosk", "Europe/Dublin")
    page = client.get("/settings/locations/").content.decode()
    assert "Quay Kiosk" in page and "Added Quay Kiosk." in page


def test_a_bad_location_form_rerenders_with_the_error_next_to_the_field(owner, org, main_st):
    response = logged_in(owner).post(
        "/settings/locations/", {"name": "Main\u202eSt", "time_zone": "Nowhere/Else"}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="id_name_error"' in body and 'id="id_time_zone_error"' in body
    assert Location.objects.filter(organization=org).count() == 2  # Main St and Harbour Rd


def test_the_owner_renames_archives_and_restores_from_the_pages(owner, org, main_st, harbour):
    client = logged_in(owner)
    url = f"/settings/locations/{harbour.pk}/"
    assert client.get(url).status_code == 200
    response = client.post(url, {"name": "Harbour Road", "time_zone": "Europe/London"})
    assert response.status_code == 302
    harbour.refresh_from_db()
    assert harbour.name == "Harbour Road" and harbour.slug == "harbour-rd"

    assert client.post(f"{url}archive/").status_code == 302
    harbour.refresh_from_db()
    assert not harbour.is_active
    page = client.get("/settings/locations/").content.decode()
    assert "Restore Harbour Road" in page and "archived" in page
    assert client.post(f"{url}restore/").status_code == 302
    harbour.refresh_from_db()
    assert harbour.is_active


def test_archiving_the_last_location_from_the_page_says_why(owner, org, main_st, harbour):
    client = logged_in(owner)
    assert client.post(f"/settings/locations/{harbour.pk}/archive/").status_code == 302
    response = client.post(f"/settings/locations/{main_st.pk}/archive/")
    assert response.status_code == 409
    assert "last active location" in response.content.decode()
    main_st.refresh_from_db()
    assert main_st.is_active


def test_managers_read_the_locations_and_change_nothing(manager, org, main_st, harbour):
    client = logged_in(manager)
    page = client.get("/settings/locations/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Harbour Rd" in body and "Add a location" not in body and "Archive" not in body
    assert client.post("/settings/locations/", {"name": "X", "time_zone": "UTC"}).status_code == 403
    assert client.post(f"/settings/locations/{harbour.pk}/archive/").status_code == 403
    assert client.get(f"/settings/locations/{harbour.pk}/").status_code == 403
    assert Location.objects.filter(organization=org).count() == 2
    harbour.refresh_from_db()
    assert harbour.is_active


def test_staff_get_the_403_page(staff):
    response = logged_in(staff).get("/settings/locations/")
    assert response.status_code == 403
    assert "This page is for owners and managers." in response.content.decode()


def test_another_orgs_location_is_404_on_every_location_page(owner, other_location):
    client = logged_in(owner)
    base = f"/settings/locations/{other_location.pk}/"
    assert client.get(base).status_code == 404
    assert client.post(base, {"name": "Mine", "time_zone": "UTC"}).status_code == 404
    assert client.post(f"{base}archive/").status_code == 404
    assert client.post(f"{base}restore/").status_code == 404
    other_location.refresh_from_db()
    assert other_location.is_active and other_location.name == "Elsewhere"


def test_times_in_the_history_read_in_the_location_zone_after_a_change(org, main_st, owner):
    """Changing a location's zone changes how its times read, never what was stored."""
    at = timezone.now() - timedelta(days=1)
    episode = record_episode(
        organization=org,
        data=EpisodeInput(
            kind="visit", identifiers={"phone": "07400 111111"}, location=main_st, occurred_at=at
        ),
    ).episode
    change_location(location=main_st, actor=owner, name="Main St", time_zone="Asia/Tokyo")
    episode.refresh_from_db()
    assert episode.occurred_at == at


def test_a_check_at_an_archived_location_is_refused_naming_location(api, archived_harbour):
    body = {
        "customer": {"phone": "07400 123456"},
        "external_id": "t-1",
        "location": "harbour-rd",
        "lines": [{"name": "Flat white"}],
    }
    response = post_json(api, "/api/v1/checks/", body)
    assert response.status_code == 404, response.content
    assert response.json()["errors"][0]["field"] == "location"
    assert not Episode.objects.exists()
    assert post_json(api, "/api/v1/checks/", {**body, "location": "main-st"}).status_code == 201


def test_customer_pages_still_show_what_happened_at_an_archived_location(
    org, owner, harbour, main_st
):
    episode = record_episode(
        organization=org,
        data=EpisodeInput(
            kind="complaint",
            identifiers={"phone": "07400 111111"},
            location=harbour,
            experience=-2,
            summary="Cold soup at the harbour",
        ),
    ).episode
    archive_location(location=harbour, actor=owner)
    body = logged_in(owner).get(f"/customers/{episode.customer_id}/").content.decode()
    assert "Cold soup at the harbour" in body and "Harbour Rd" in body


def test_no_key_is_made_for_an_archived_location(org, owner, archived_harbour):
    from django.core.management import CommandError, call_command

    with pytest.raises(ValueError, match="archived"):
        create_api_key(organization=org, name="Harbour till", location=archived_harbour)
    with pytest.raises(CommandError, match="archived"):
        call_command("create_api_key", org=org.slug, location="harbour-rd", name="Harbour till")

"""Who may merge two customers (recovery.services.check_merge_allowed), on the API and the page.

A merge moves a whole narrative and dismisses the duplicate's open cases: it is a manager's or
an owner's decision (or an organization-wide key's), and only over cases the actor can see.
Every case it closes gets a history event."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Role
from cxcore.models import Customer
from cxcore.services import EpisodeInput, record_episode
from recovery.models import CaseEvent, RecoveryCase
from recovery.sweep import sweep_recovery
from tests.conftest import _member

NOW = datetime.now(UTC)


def complainer(org, name, phone, location):
    return record_episode(
        organization=org,
        data=EpisodeInput(
            kind="complaint",
            identifiers={"phone": phone},
            name=name,
            summary="Cold food",
            experience=-2,
            location=location,
            occurred_at=NOW - timedelta(days=2),
        ),
    ).episode.customer


@pytest.fixture
def pair(org, main_st, harbour, playbooks):
    """One person twice, each with an open recovery case: one at Main St, one at Harbour Rd."""
    kept = complainer(org, "Ida Wren", "07400 410001", main_st)
    duplicate = complainer(org, "I. Wren", "07400 410002", harbour)
    sweep_recovery(now=NOW)
    assert RecoveryCase.objects.filter(customer__in=[kept, duplicate], status="open").count() == 2
    return kept, duplicate


def merge_api(client, kept, duplicate):
    return client.post(
        f"/api/v1/customers/{kept.pk}/merge/", {"duplicate": duplicate.pk}, format="json"
    )


def merge_page(user, kept, duplicate):
    client = Client()
    client.force_login(user)
    url = reverse("customer-merge", args=[kept.pk])
    return client.post(url, {"duplicate": duplicate.pk, "confirm": "yes"})


def both_still_there(kept, duplicate) -> bool:
    return Customer.objects.filter(pk__in=[kept.pk, duplicate.pk]).count() == 2


def test_a_location_key_may_not_merge(till, pair):
    kept, duplicate = pair
    response = merge_api(till, kept, duplicate)
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "merge_not_allowed"
    assert both_still_there(kept, duplicate)


def test_a_staff_session_may_not_merge(staff, pair):
    kept, duplicate = pair
    client = APIClient()
    client.force_login(staff)
    response = merge_api(client, kept, duplicate)
    assert response.status_code == 403
    assert "owners and managers" in response.json()["errors"][0]["message"]
    assert both_still_there(kept, duplicate)


def test_a_manager_may_not_merge_over_a_case_at_a_location_they_cannot_see(manager, pair):
    """The manager is limited to Main St; the duplicate's case is at Harbour Rd."""
    kept, duplicate = pair
    client = APIClient()
    client.force_login(manager)
    response = merge_api(client, kept, duplicate)
    assert response.status_code == 403
    error = response.json()["errors"][0]
    assert error["field"] == "duplicate" and error["code"] == "case_not_visible"
    assert both_still_there(kept, duplicate)

    page = merge_page(manager, kept, duplicate)
    assert page.status_code == 403
    assert "Harbour" in page.content.decode()
    assert both_still_there(kept, duplicate)


def test_a_manager_of_every_location_merges_and_the_closed_case_has_its_event(
    org, main_st, harbour, pair
):
    kept, duplicate = pair
    everywhere = _member(org, Role.MANAGER, [main_st, harbour])
    response = merge_page(everywhere, kept, duplicate)
    assert response.status_code == 302
    assert not Customer.objects.filter(pk=duplicate.pk).exists()
    dismissed = RecoveryCase.objects.get(customer=kept, status="dismissed")
    event = CaseEvent.objects.get(case=dismissed, type="dismissed")
    assert event.actor_user_id == everywhere.pk
    assert f"#{kept.pk}" in event.data["reason"]


def test_an_org_wide_key_merges(api, pair):
    kept, duplicate = pair
    response = merge_api(api, kept, duplicate)
    assert response.status_code == 200
    assert not Customer.objects.filter(pk=duplicate.pk).exists()

"""Merging a duplicate from the customer page (recovery/views/customers.py): search, both side
by side, confirm; owners and managers only; through the API's own service."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from cxcore.models import Customer
from cxcore.services import EpisodeInput, record_episode
from recovery.models import RecoveryCase
from recovery.sweep import sweep_recovery


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def person(org, name, phone, **fields):
    return record_episode(
        organization=org,
        data=EpisodeInput(
            kind=fields.pop("kind", "visit"),
            identifiers={"phone": phone},
            name=name,
            occurred_at=fields.pop("occurred_at", datetime.now(UTC) - timedelta(days=3)),
            **fields,
        ),
    ).episode.customer


@pytest.fixture
def twins(org, main_st, playbooks):
    """Margaret twice: once by phone at the till, once by a feedback form, with a case."""
    kept = person(org, "Margaret Lyon", "07400 100001", location=main_st)
    duplicate = person(org, "M. Lyon", "07400 100002", kind="feedback", experience=-2,
                       summary="Valet kept me waiting")  # fmt: skip
    sweep_recovery(now=datetime.now(UTC))
    return kept, duplicate


def merge_url(customer, **query) -> str:
    url = reverse("customer-merge", args=[customer.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_the_customer_page_links_managers_and_owners_to_the_merge(owner, manager, staff, twins):
    kept, _ = twins
    link = f'href="{reverse("customer-merge", args=[kept.pk])}"'
    for who, shown in ((owner, True), (manager, True), (staff, False)):
        page = logged_in(who).get(reverse("customer-page", args=[kept.pk])).content.decode()
        assert (link in page) is shown


def test_search_then_both_side_by_side_then_confirm(manager, twins):
    kept, duplicate = twins
    client = logged_in(manager)
    found = client.get(merge_url(kept, q="Lyon")).content.decode()
    assert f'href="?duplicate={duplicate.pk}"' in found
    assert f'href="?duplicate={kept.pk}"' not in found  # not the customer kept
    by_phone = client.get(merge_url(kept, q="07400100002")).content.decode()
    assert f'href="?duplicate={duplicate.pk}"' in by_phone

    compare = client.get(merge_url(kept, duplicate=duplicate.pk)).content.decode()
    sides = compare.split('class="card side"')[1:]
    assert len(sides) == 2
    assert "Margaret Lyon" in sides[0] and "+44 7400 100001" in sides[0]
    assert "M. Lyon" in sides[1] and "+44 7400 100002" in sides[1] and "recovery" in sides[1]
    assert "Merge M. Lyon into Margaret Lyon" in compare

    response = client.post(merge_url(kept), {"duplicate": duplicate.pk, "confirm": "yes"})
    assert response.status_code == 302
    assert response["Location"] == reverse("customer-page", args=[kept.pk])
    assert not Customer.objects.filter(pk=duplicate.pk).exists()
    kept.refresh_from_db()
    assert kept.episode_count == 2 and kept.recovery_case_open
    assert RecoveryCase.objects.get(customer=kept).status == "open"
    assert {i.value for i in kept.identifiers.all()} == {"+447400100001", "+447400100002"}
    page = client.get(reverse("customer-page", args=[kept.pk])).content.decode()
    assert "Merged M. Lyon into Margaret Lyon." in page


def test_keep_the_other_one_instead_swaps_the_sides(owner, twins):
    kept, duplicate = twins
    compare = logged_in(owner).get(merge_url(kept, duplicate=duplicate.pk)).content.decode()
    swap = f"{reverse('customer-merge', args=[duplicate.pk])}?duplicate={kept.pk}"
    assert f'href="{swap}"' in compare


def test_a_merge_without_the_confirmation_changes_nothing(owner, twins):
    kept, duplicate = twins
    response = logged_in(owner).post(merge_url(kept), {"duplicate": duplicate.pk})
    assert response.status_code == 400
    assert "Confirm the merge" in response.content.decode()
    assert Customer.objects.filter(pk=duplicate.pk).exists()


def test_merging_a_customer_into_itself_is_refused(owner, twins):
    kept, _ = twins
    page = logged_in(owner).get(merge_url(kept, duplicate=kept.pk)).content.decode()
    assert "choose another customer" in page
    response = logged_in(owner).post(merge_url(kept), {"duplicate": kept.pk, "confirm": "yes"})
    assert response.status_code == 400
    assert Customer.objects.filter(pk=kept.pk).exists()


def test_staff_get_the_403_page_and_nothing_is_merged(staff, twins):
    kept, duplicate = twins
    client = logged_in(staff)
    response = client.get(merge_url(kept, duplicate=duplicate.pk))
    assert response.status_code == 403
    assert "owners and managers" in response.content.decode().lower()
    response = client.post(merge_url(kept), {"duplicate": duplicate.pk, "confirm": "yes"})
    assert response.status_code == 403
    assert Customer.objects.filter(pk=duplicate.pk).exists()


def test_another_organizations_customers_are_404_either_side(owner, outsider, other_org, twins):
    kept, duplicate = twins
    theirs = person(other_org, "Margaret Rival", "+14155550101")
    client = logged_in(owner)
    assert client.get(merge_url(theirs)).status_code == 404
    assert client.get(merge_url(kept, duplicate=theirs.pk)).status_code == 404
    response = client.post(merge_url(kept), {"duplicate": theirs.pk, "confirm": "yes"})
    assert response.status_code == 404
    assert "Margaret Rival" not in client.get(merge_url(kept, q="Margaret")).content.decode()
    outsiders = logged_in(outsider)
    assert outsiders.get(merge_url(kept, duplicate=duplicate.pk)).status_code == 404
    assert Customer.objects.filter(pk__in=[theirs.pk, duplicate.pk]).count() == 2

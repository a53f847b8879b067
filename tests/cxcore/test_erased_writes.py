"""Writes to an erased customer are refused (cxcore/services/erased.py): a 409 naming the
customer, and nothing changes; the next episode with their phone starts a new customer."""

from __future__ import annotations

import json

import pytest

from cxcore.models import Customer, Episode, Identifier
from cxcore.privacy import erase_customer
from cxcore.services import EpisodeInput, record_episode, update_customer
from cxcore.services.erased import CustomerErased
from tests.cxcore.test_tenancy import page_client

PHONE = "+447400555123"


@pytest.fixture
def erased(org, main_st):
    customer_id = record_episode(
        organization=org,
        data=EpisodeInput(kind="visit", identifiers={"phone": PHONE}, name="Iris"),
    ).episode.customer_id
    customer = Customer.objects.get(pk=customer_id)
    erase_customer(customer=customer, reason="Asked by email")
    return Customer.objects.get(pk=customer_id)


def state() -> dict:
    return {
        "customers": list(Customer.objects.order_by("pk").values()),
        "episodes": list(Episode.objects.order_by("pk").values()),
        "identifiers": list(Identifier.objects.order_by("pk").values()),
    }


def post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def assert_erased_409(response, customer_id, field="customer.id"):
    assert response.status_code == 409, response.content[:300]
    body = response.json()
    assert body["errors"][0]["field"] == field
    assert body["errors"][0]["code"] == "customer_erased"
    assert f"Customer #{customer_id} was erased" in body["errors"][0]["message"]


def test_logging_an_episode_by_the_erased_customers_id_is_409_and_changes_nothing(api, erased):
    before = state()
    body = {"customer": {"id": erased.pk}, "kind": "complaint", "summary": "Iris again"}
    assert_erased_409(post(api, "/api/v1/episodes/", body), erased.pk)
    assert_erased_409(post(api, "/api/v1/visits/", {"customer": {"id": erased.pk}}), erased.pk)
    assert state() == before


def test_a_bulk_item_for_the_erased_customer_fails_alone(api, erased):
    items = [
        {"customer": {"id": erased.pk}, "kind": "visit"},
        {"customer": {"phone": "+447400555999"}, "kind": "visit"},
    ]
    response = post(api, "/api/v1/episodes/bulk/", {"episodes": items})
    assert response.status_code == 200
    first, second = response.json()["results"]
    assert first["status"] == "error"
    assert first["errors"][0]["code"] == "customer_erased"
    assert first["errors"][0]["field"] == "customer.id"
    assert second["status"] == "created"
    assert Episode.objects.filter(customer_id=erased.pk).count() == 1


def test_editing_the_erased_customer_is_409_over_the_api_and_on_the_page(api, owner, erased):
    before = state()
    response = api.patch(
        f"/api/v1/customers/{erased.pk}/",
        data=json.dumps({"name": "Iris", "notes": "Likes oat milk"}),
        content_type="application/json",
    )
    assert_erased_409(response, erased.pk)
    page = page_client(owner).post(f"/customers/{erased.pk}/notes/", {"notes": "Oat milk"})
    assert page.status_code == 409
    assert f"Customer #{erased.pk} was erased" in page.content.decode()
    with pytest.raises(CustomerErased):
        update_customer(customer=erased, notes="Oat milk")
    assert state() == before


def test_the_till_cannot_log_on_the_erased_customer(staff, erased):
    before = state()
    response = page_client(staff).post(
        f"/pos/customers/{erased.pk}/log/", {"kind": "note", "summary": "Iris said hi"}
    )
    assert f"Customer #{erased.pk} was erased" in response.content.decode()
    assert state() == before


def test_merging_into_or_from_the_erased_customer_is_409(api, org, erased):
    other = record_episode(
        organization=org, data=EpisodeInput(kind="visit", identifiers={"phone": "+447400555777"})
    ).episode.customer_id
    before = state()
    response = post(api, f"/api/v1/customers/{erased.pk}/merge/", {"duplicate": other})
    assert_erased_409(response, erased.pk, field="customer")
    response = post(api, f"/api/v1/customers/{other}/merge/", {"duplicate": erased.pk})
    assert_erased_409(response, erased.pk, field="duplicate")
    assert state() == before


def test_the_same_phone_after_erasure_starts_a_new_customer(api, erased):
    response = post(api, "/api/v1/episodes/", {"customer": {"phone": PHONE}, "kind": "visit"})
    assert response.status_code == 201
    assert response.json()["customer"] != erased.pk
    assert Identifier.objects.get(value=PHONE).customer_id == response.json()["customer"]


def test_correcting_an_erased_customers_episode_is_409(api, owner, erased):
    episode = Episode.objects.get(customer_id=erased.pk)
    before = state()
    response = post(api, f"/api/v1/episodes/{episode.pk}/experience/", {"experience": -2})
    assert_erased_409(response, erased.pk, field="episode")
    page = page_client(owner).post(
        f"/customers/{erased.pk}/experience/", {"episode": episode.pk, "experience": "-2"}
    )
    assert page.status_code == 409
    assert f"Customer #{erased.pk} was erased" in page.content.decode()
    assert state() == before

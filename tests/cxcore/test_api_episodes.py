import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from cxcore.models import Customer, Episode, IdempotencyRecord
from tests.conftest import key_client

EPISODES = "/api/v1/episodes/"


def body(**overrides):
    payload = {
        "customer": {"phone": "07400 123456", "name": "Dan Reyes"},
        "kind": "complaint",
        "summary": "Order forgotten during the rush",
        "touchpoints": ["order_accuracy", {"code": "delivery", "third_party": True}],
        "items": [{"name": "Almond-milk latte", "quantity": 1, "price": "3.6"}],
        "experience": -2,
        "source": "pos",
    }
    payload.update(overrides)
    return payload


def test_post_episode_answers_201_with_the_episode_customer_and_experience(api, main_st):
    response = api.post(EPISODES, body(location="main-st"), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    customer = Customer.objects.get()
    assert data["customer"] == customer.pk
    assert (data["experience"], data["experience_source"]) == (-2, "explicit")
    assert data["location"] == "main-st"
    assert data["touchpoints"] == [
        {"code": "order_accuracy", "third_party": False},
        {"code": "delivery", "third_party": True},
    ]
    assert data["items"] == [{"name": "Almond-milk latte", "quantity": 1, "price": "3.60"}]
    assert customer.last_experience == -2


def test_a_rating_is_mapped_and_reported_with_its_source(api):
    response = api.post(
        EPISODES,
        body(kind="feedback", experience=None, rating={"scale": "stars5", "value": 4}),
        format="json",
    )
    assert response.status_code == 201
    data = response.json()
    assert (data["experience"], data["experience_source"]) == (1, "rating")
    assert data["rating"] == {"scale": "stars5", "value": 4}


def test_a_location_key_logs_at_its_location_by_default(till, main_st):
    response = till.post(EPISODES, body(), format="json")
    assert response.json()["location"] == "main-st"
    author = Episode.objects.get().author_api_key
    assert author is not None
    assert author.name == "Main St till"


def test_idempotency_key_replays_the_first_response(api):
    first = api.post(EPISODES, body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post(EPISODES, body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Episode.objects.count() == 1


def test_idempotency_key_with_another_body_is_refused_and_changes_nothing(api):
    api.post(EPISODES, body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    response = api.post(
        EPISODES, body(summary="something else"), format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert Episode.objects.count() == 1


def test_idempotency_keys_are_scoped_to_the_api_key(api, till):
    api.post(EPISODES, body(), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    response = till.post(EPISODES, body(), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Episode.objects.count() == 2


def test_a_rejected_request_does_not_burn_its_idempotency_key(api):
    bad = api.post(
        EPISODES, body(customer={"phone": "12"}), format="json", HTTP_IDEMPOTENCY_KEY="k-2"
    )
    assert bad.status_code == 400
    assert IdempotencyRecord.objects.count() == 0
    good = api.post(EPISODES, body(), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert good.status_code == 201


def test_a_repeated_external_id_answers_200_with_the_first_episode(api):
    first = api.post(EPISODES, body(external_id="T-77"), format="json")
    again = api.post(EPISODES, body(external_id="T-77", summary="retry"), format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Episode.objects.count() == 1


def _concurrently(count, request):
    barrier = threading.Barrier(count)

    def run(index):
        try:
            barrier.wait(timeout=10)
            return request(index)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


@pytest.mark.django_db(transaction=True)
def test_forty_concurrent_requests_with_one_key_create_exactly_one_episode(org_key):
    def post(_):
        response = key_client(org_key).post(
            EPISODES, body(), format="json", HTTP_IDEMPOTENCY_KEY="rush-hour"
        )
        return response.status_code, response.json()

    results = _concurrently(40, post)
    assert {status for status, _ in results} == {201}
    assert len({data["id"] for _, data in results}) == 1
    assert Episode.objects.count() == 1
    assert Customer.objects.count() == 1
    assert Customer.objects.get().episode_count == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_external_id_create_one_episode(org_key):
    def post(_):
        response = key_client(org_key).post(EPISODES, body(external_id="T-9"), format="json")
        return response.status_code, response.json()["id"]

    results = _concurrently(16, post)
    assert sorted(status for status, _ in results).count(201) == 1
    assert {status for status, _ in results} <= {200, 201}
    assert len({episode_id for _, episode_id in results}) == 1
    assert Episode.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_writes_for_one_customer_lose_no_update(org_key):
    def post(_):
        return key_client(org_key).post(EPISODES, body(kind="visit"), format="json").status_code

    statuses = _concurrently(16, post)
    assert statuses == [201] * 16
    customer = Customer.objects.get()
    assert customer.visit_count == customer.episode_count == 16


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_visits_of_a_new_person_create_one_customer(org_key):
    def post(_):
        payload = body(kind="visit", customer={"phone": "07400 555000", "email": "new@x.com"})
        return key_client(org_key).post(EPISODES, payload, format="json").status_code

    statuses = _concurrently(12, post)
    assert statuses == [201] * 12
    assert Customer.objects.count() == 1
    assert Customer.objects.get().visit_count == 12


def test_bulk_reports_each_item_and_keeps_the_good_ones(api):
    payload = {
        "episodes": [
            body(kind="visit", external_id="B-1"),
            body(kind="visit", external_id="B-1"),  # repeat inside the batch
            body(kind="nonsense"),
            body(customer={"email": "other@x.com"}, kind="compliment", summary="Lovely!"),
        ]
    }
    response = api.post(f"{EPISODES}bulk/", payload, format="json")
    assert response.status_code == 200
    data = response.json()
    assert (data["created"], data["duplicates"], data["failed"]) == (2, 1, 1)
    statuses = [r["status"] for r in data["results"]]
    assert statuses == ["created", "duplicate", "error", "created"]
    assert data["results"][1]["episode"]["id"] == data["results"][0]["episode"]["id"]
    assert data["results"][2]["errors"][0]["field"] == "kind"
    assert Episode.objects.count() == 2
    dan = Customer.objects.get(identifiers__value="+447400123456")
    assert dan.visit_count == 1


def test_bulk_of_an_existing_external_id_is_a_duplicate(api):
    api.post(EPISODES, body(external_id="X-1"), format="json")
    response = api.post(f"{EPISODES}bulk/", {"episodes": [body(external_id="X-1")]}, format="json")
    assert response.json()["results"][0]["status"] == "duplicate"
    assert Episode.objects.count() == 1


def test_customer_lookup_and_timeline_page_by_keyset(api):
    for n in range(5):
        api.post(EPISODES, body(kind="visit", summary=f"visit {n}"), format="json")
    found = api.get("/api/v1/customers/", {"phone": "+44 7400 123456"}).json()["results"]
    assert len(found) == 1 and found[0]["visit_count"] == 5
    customer_id = found[0]["id"]
    page = api.get(f"/api/v1/customers/{customer_id}/timeline/", {"page_size": 2}).json()
    seen = [e["summary"] for e in page["results"]]
    while page["next"]:
        page = api.get(page["next"]).json()
        seen += [e["summary"] for e in page["results"]]
    assert seen == [f"visit {n}" for n in reversed(range(5))]


def test_staff_can_edit_notes_and_correct_an_experience(api):
    created = api.post(EPISODES, body(), format="json").json()
    patched = api.patch(
        f"/api/v1/customers/{created['customer']}/", {"notes": "Allergic to nuts"}, format="json"
    )
    assert patched.status_code == 200 and patched.json()["notes"] == "Allergic to nuts"
    corrected = api.post(
        f"/api/v1/episodes/{created['id']}/experience/",
        {"experience": -1, "reason": "Not that bad"},
        format="json",
    )
    assert corrected.status_code == 200
    assert corrected.json()["experience_source"] == "corrected"
    assert Customer.objects.get().last_experience == -1


def test_timeline_and_lookup_cost_a_fixed_number_of_queries(api, django_assert_max_num_queries):
    for n in range(30):
        api.post(EPISODES, body(kind="visit", summary=f"v{n}"), format="json")
    customer_id = Customer.objects.get().pk
    # auth (key lookup) + customer + one page of episodes with their joins, however long
    # the history is
    with django_assert_max_num_queries(4):
        page = api.get(f"/api/v1/customers/{customer_id}/timeline/", {"page_size": 20})
    assert len(page.json()["results"]) == 20
    with django_assert_max_num_queries(5):
        found = api.get("/api/v1/customers/", {"phone": "07400 123456"})
    assert found.json()["results"][0]["episode_count"] == 30


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_with_the_same_new_people_in_any_order_neither_fail_nor_duplicate(
    org_key,
):
    phones = [f"07400 7{n:05d}" for n in range(40)]

    def batch(order):
        return {"episodes": [body(kind="visit", customer={"phone": p}) for p in order]}

    orders = [phones, list(reversed(phones))] * 3

    def post(index):
        response = key_client(org_key).post(f"{EPISODES}bulk/", batch(orders[index]), format="json")
        return response.status_code, response.json().get("created")

    results = _concurrently(len(orders), post)
    assert results == [(200, 40)] * len(orders)
    assert Customer.objects.count() == 40
    assert sorted(Customer.objects.values_list("visit_count", flat=True)) == [6] * 40


@pytest.mark.django_db(transaction=True)
def test_bulk_and_single_writers_share_new_people_without_duplicates(org_key):
    phones = [f"07400 6{n:05d}" for n in range(10)]

    def post(index):
        client = key_client(org_key)
        if index % 2:
            payload = {"episodes": [body(kind="visit", customer={"phone": p}) for p in phones]}
            return client.post(f"{EPISODES}bulk/", payload, format="json").status_code
        payload = body(
            kind="visit", customer={"phone": phones[index % 10], "email": f"{index}@x.com"}
        )
        return client.post(EPISODES, payload, format="json").status_code

    statuses = _concurrently(8, post)
    assert set(statuses) <= {200, 201}
    assert Customer.objects.count() == 10
    assert Customer.objects.filter(episode_count=0).count() == 0


def test_episode_documents_are_what_the_declared_fields_describe(api, main_st):
    """Episodes are rendered by hand for speed; they must equal DRF's generic output, with
    every optional part empty and filled."""
    from rest_framework import serializers

    from cxcore.api.serializers import EpisodeSerializer

    bodies = [
        {"customer": {"phone": "07710 000001"}, "kind": "note"},
        {
            "customer": {"phone": "07710 000002", "name": "Ada"},
            "kind": "feedback",
            "location": main_st.slug,
            "summary": "Cold flat white, slow valet",
            "touchpoints": ["food_and_drink", {"code": "parking_valet", "third_party": True}],
            "items": [{"name": "Flat white", "quantity": 2, "price": "3.40"}],
            "rating": {"scale": "stars5", "value": 2},
            "source": "pos",
            "external_id": "t-1",
        },
    ]
    generic = serializers.ModelSerializer.to_representation
    for body in bodies:
        response = api.post("/api/v1/episodes/", body, format="json")
        assert response.status_code == 201, response.json()
        episode = Episode.objects.get(pk=response.json()["id"])
        expected = generic(EpisodeSerializer(), episode)
        assert response.json() == expected
        assert list(response.json()) == list(expected)
    assert expected["location"] == main_st.slug and expected["rating"]["value"] == 2

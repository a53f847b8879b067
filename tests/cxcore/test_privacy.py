"""The customer's data rights (cxcore/privacy.py, cxcore/api/privacy.py): export shows the whole
record and nothing of anyone else; erase leaves nothing of the person in any table (a full
pg_dump is searched) while counts stay; only owners and organization-wide keys may."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.errors import InvalidInput
from accounts.services import create_api_key
from cxcore.models import (
    Customer,
    CustomerEdit,
    Episode,
    Erasure,
    ExperienceCorrection,
    IdempotencyRecord,
    Identifier,
)
from cxcore.privacy import (
    erase_customer,
    export_customer,
    mentions_customer,
    strip_items,
)
from cxcore.services import (
    EpisodeInput,
    correct_experience,
    rebuild_narrative,
    record_episode,
    update_customer,
)
from tests.conftest import key_client
from tests.factories import CustomerFactory, EpisodeFactory, UserFactory

# Every personal string below holds MARK (the phone holds PHONE_DIGITS), so one search of a
# database dump finds any of them that survived.
MARK = "qx7"
FIRST_NAME = "Zebulon"
PHONE_DIGITS = "7400913572"
PERSON: dict[str, str] = {
    "name": f"{FIRST_NAME} Qx7surname",
    "phone": "07400 913572",
    "email": "Zebulon.QX7@example.org",
    "card": "CARD-QX7-5521",
    "pos_id": "POS-QX7-88",
}
ITEM: dict[str, Any] = {"name": "Qx7berry latte", "quantity": 2, "price": "3.60"}


def export_of(customer: Customer) -> dict[str, Any]:
    return json.loads(b"".join(export_customer(customer=customer)))


def streamed(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def pg_dump() -> str:
    """The whole test database as SQL text: what a backup, a replica or a thief would hold."""
    settings = connection.settings_dict
    env = {**os.environ}
    if settings.get("PASSWORD"):
        env["PGPASSWORD"] = settings["PASSWORD"]
    command = ["pg_dump", "-h", settings.get("HOST") or "127.0.0.1", "-U", settings["USER"]]
    if settings.get("PORT"):
        command += ["-p", str(settings["PORT"])]
    result = subprocess.run(
        [*command, settings["NAME"]], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def personal_traces(dump: str, extra: Iterable[str] = ()) -> list[str]:
    """The lines of a dump that still hold something of the person."""
    needles = [MARK, FIRST_NAME.lower(), PHONE_DIGITS, *(e.lower() for e in extra)]
    return [line for line in dump.splitlines() if any(n in line.lower() for n in needles)]


def created_by_api(api: APIClient, **fields: Any) -> dict[str, Any]:
    """The customer arrives as a POS sends them: every identifier, a name, an idempotency key."""
    body = {
        "customer": PERSON,
        "kind": "order",
        "summary": "Qx7summary: asked for oat milk, allergic to nuts",
        "items": [ITEM],
        "external_id": "check-qx7-1001",
        **fields,
    }
    response = api.post("/api/v1/episodes/", body, format="json", HTTP_IDEMPOTENCY_KEY="qx7-k1")
    assert response.status_code == 201, response.json()
    return response.json()


def full_record(org, api: APIClient, *, now) -> Customer:
    """A customer with something personal in every field cxcore holds."""
    created = created_by_api(api, occurred_at=(now - timedelta(days=9)).isoformat())
    customer = Customer.objects.get(pk=created["customer"])
    update_customer(customer=customer, notes="Qx7notes: prefers the window seat")
    for days in (8, 5):
        record_episode(
            organization=org,
            data=EpisodeInput(
                customer_id=customer.pk,
                kind="order",
                occurred_at=now - timedelta(days=days),
                items=[ITEM],
                summary=f"Qx7 order {days} days ago",
                external_id=f"check-qx7-{days}",
                source="pos",
            ),
            now=now,
        )
    complaint = record_episode(
        organization=org,
        data=EpisodeInput(
            customer_id=customer.pk,
            kind="feedback",
            occurred_at=now - timedelta(days=2),
            rating={"scale": "stars5", "value": 2},
            summary="Qx7: cold coffee, rude at the till",
            touchpoints=[{"code": "food_drink", "third_party": False}],
        ),
        now=now,
    ).episode
    correct_experience(episode=complaint, experience=-2, reason="Qx7corr: he told me it was worse")
    ContentType.objects.clear_cache()
    LogEntry.objects.create(
        user=UserFactory.create(),
        content_type=ContentType.objects.get_for_model(Customer),
        object_id=str(customer.pk),
        object_repr=str(customer),
        action_flag=CHANGE,
        change_message=json.dumps([{"changed": {"fields": ["Notes"]}}]),
    )
    customer.refresh_from_db()
    return customer


# --- erase -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_after_erase_nothing_of_the_person_is_left_in_a_full_database_dump(org, main_st, api):
    now = timezone.now()
    customer = full_record(org, api, now=now)
    before = pg_dump()
    assert MARK in before.lower() and PHONE_DIGITS in before and FIRST_NAME in before

    erase_customer(customer=customer, reason="Asked at the counter, ticket 12")

    assert personal_traces(pg_dump()) == []


def test_erase_clears_every_personal_field_and_keeps_the_episodes(org, main_st, api, owner):
    now = timezone.now()
    customer = full_record(org, api, now=now)
    episodes = list(Episode.objects.filter(customer=customer).order_by("id"))
    spend = customer.total_spend
    assert customer.usual_order == ITEM["name"] and spend > 0

    erasure = erase_customer(customer=customer, reason="By email", by_user=owner)

    customer.refresh_from_db()
    assert (customer.name, customer.notes, customer.usual_order) == ("", "", "")
    assert not Identifier.objects.filter(customer=customer).exists()
    after = list(Episode.objects.filter(customer=customer).order_by("id"))
    assert [
        (e.pk, e.kind, e.occurred_at, e.location_id, e.experience, e.touchpoints) for e in after
    ] == [
        (e.pk, e.kind, e.occurred_at, e.location_id, e.experience, e.touchpoints) for e in episodes
    ]
    assert {(e.summary, e.external_id) for e in after} == {("", "")}
    assert all("name" not in item for e in after for item in e.items)
    assert not ExperienceCorrection.objects.filter(episode__customer=customer).exclude(reason="")
    assert not IdempotencyRecord.objects.exists()
    entry = LogEntry.objects.get()
    assert (entry.object_repr, entry.change_message) == (f"Customer #{customer.pk}", "")
    # The narrative still agrees with its episodes, and the total spend is the same.
    assert rebuild_narrative(customer_id=customer.pk) is False
    customer.refresh_from_db()
    assert (customer.total_spend, customer.episode_count) == (spend, len(episodes))
    # The record of the erasure: who, when, why, how much; nothing of the person.
    assert (erasure.customer_id, erasure.organization_id, erasure.by_user) == (
        customer.pk,
        org.pk,
        owner,
    )
    assert erasure.cleared["identifiers"] == 4
    assert erasure.cleared["episode_texts"] == len(episodes)
    assert erasure.cleared["episode_items"] == 3
    assert erasure.cleared["idempotency_records"] == 1
    # The card's history keeps who changed which fields when, and loses what they said.
    (edit,) = CustomerEdit.objects.filter(customer=customer)
    assert (edit.kind, edit.fields, edit.changes) == ("edit", ["notes"], {})
    assert erasure.cleared["customer_edit_values"] == 1


def test_erase_leaves_other_customers_alone(org, main_st, api):
    now = timezone.now()
    customer = full_record(org, api, now=now)
    other = api.post(
        "/api/v1/episodes/",
        {"customer": {"phone": "07400 913999", "name": "Ada Other"}, "kind": "visit",
         "summary": "Ada's visit", "items": [{"name": "Tea", "quantity": 1}]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="other-k1",
    ).json()  # fmt: skip

    erase_customer(customer=customer, reason="Asked")

    ada = Customer.objects.get(pk=other["customer"])
    assert ada.name == "Ada Other"
    assert ada.identifiers.get().value == "+447400913999"
    assert ada.episodes.get().summary == "Ada's visit"
    assert IdempotencyRecord.objects.get().key == "other-k1"


def test_erase_needs_a_reason_and_changes_nothing_without_one(org, main_st, api):
    customer = full_record(org, api, now=timezone.now())
    for reason in ("", "   "):
        with pytest.raises(InvalidInput, match="Say why") as caught:
            erase_customer(customer=customer, reason=reason)
        assert caught.value.field == "reason"
    customer.refresh_from_db()
    assert customer.name == PERSON["name"]
    assert not Erasure.objects.exists()


def test_erasing_twice_is_harmless_and_recorded_twice(org, main_st, api):
    customer = full_record(org, api, now=timezone.now())
    erase_customer(customer=customer, reason="First")
    again = erase_customer(customer=customer, reason="Second request")
    assert set(again.cleared.values()) == {0}
    assert Erasure.objects.filter(customer_id=customer.pk).count() == 2


def test_a_later_episode_with_the_same_phone_creates_a_new_customer(org, main_st, api):
    customer = full_record(org, api, now=timezone.now())
    erase_customer(customer=customer, reason="Asked")

    response = api.post(
        "/api/v1/episodes/",
        {"customer": {"phone": PERSON["phone"]}, "kind": "visit"},
        format="json",
    )

    assert response.status_code == 201
    newcomer = Customer.objects.get(pk=response.json()["customer"])
    assert newcomer.pk != customer.pk
    assert newcomer.identifiers.get().value == "+44" + PHONE_DIGITS
    assert newcomer.episode_count == 1
    customer.refresh_from_db()
    assert customer.episode_count == 4  # the erased narrative does not grow


def test_the_same_idempotency_key_after_erase_runs_again_as_a_new_customer(org, main_st, api):
    """Its stored response named the customer, so it is gone: a late retry is a new write."""
    customer = full_record(org, api, now=timezone.now())
    erase_customer(customer=customer, reason="Asked")
    again = created_by_api(api, external_id="check-qx7-1001-retry")
    assert again["customer"] != customer.pk


def test_items_keep_what_the_spend_is_made_of():
    items = [ITEM, {"name": "Water"}, "junk"]
    assert strip_items(items) == [{"quantity": 2, "price": "3.60"}, {}]


@pytest.mark.parametrize(
    ("body", "mentioned"),
    [
        ({"id": 1, "customer": 42, "summary": "x"}, True),
        ({"results": [{"index": 0, "episode": {"customer": 42}}]}, True),
        ({"customer": {"id": 42, "name": ""}, "prompts": []}, True),
        ({"errors": [{"message": "+447400913572 is taken"}]}, True),
        ({"customer": 420, "id": 42}, False),
        ({"customer": {"id": 7}, "results": [{"episode": 42}]}, False),
        (None, False),
    ],
)
def test_a_stored_response_mentions_the_customer_by_id_or_identifier(body, mentioned):
    assert mentions_customer(body, customer_id=42, values=["+447400913572"]) is mentioned


# --- export ----------------------------------------------------------------------------------

SECTIONS = {
    "identifiers",
    "customer_edits",
    "episodes",
    "experience_corrections",
    "cases",
    "partner_incidents",
    "consents",
    "read_audit",
    "erasures",
}


def test_the_export_holds_every_section_and_nothing_of_another_customer(org, main_st, api):
    now = timezone.now()
    customer = full_record(org, api, now=now)
    other = CustomerFactory.create(organization=org, name="Qy9 Neighbour", notes="Qy9notes")
    EpisodeFactory.create(customer=other, summary="Qy9 summary", kind="complaint", experience=-1)

    text = b"".join(export_customer(customer=customer)).decode()
    doc = json.loads(text)

    assert set(doc) == {"format", "exported_at", "organization", "customer", *SECTIONS}
    assert doc["format"] == "comeback.customer-export.v1"
    assert doc["organization"] == {"name": org.name, "slug": org.slug}
    assert doc["customer"]["id"] == customer.pk
    assert doc["customer"]["name"] == PERSON["name"]
    assert doc["customer"]["notes"].startswith("Qx7notes")
    assert doc["customer"]["usual_order"] == ITEM["name"]
    assert doc["customer"]["visit_count"] == customer.visit_count
    assert {(i["kind"], i["value"]) for i in doc["identifiers"]} == {
        ("phone", "+44" + PHONE_DIGITS),
        ("email", "zebulon.qx7@example.org"),
        ("card", PERSON["card"]),
        ("pos_id", PERSON["pos_id"]),
    }
    episodes = Episode.objects.filter(customer=customer).order_by("-occurred_at", "-id")
    assert [e["id"] for e in doc["episodes"]] == [e.pk for e in episodes]
    assert doc["episodes"][-1]["items"] == [ITEM]
    assert [c["reason"] for c in doc["experience_corrections"]] == [
        "Qx7corr: he told me it was worse"
    ]
    assert doc["consents"] == [] and doc["read_audit"] == [] and doc["erasures"] == []
    (edit,) = doc["customer_edits"]
    assert (edit["kind"], edit["actor"], edit["fields"]) == ("edit", "system", ["notes"])
    assert edit["changes"]["notes"] == {"old": "", "new": "Qx7notes: prefers the window seat"}
    assert "Qy9" not in text and str(other.pk) not in re.findall(r'"customer":(\d+)', text)


def test_the_export_of_an_erased_customer_says_when_and_why_and_nothing_else(org, main_st, api):
    customer = full_record(org, api, now=timezone.now())
    erase_customer(customer=customer, reason="Asked at the counter")

    text = b"".join(export_customer(customer=customer)).decode()
    doc = json.loads(text)

    assert MARK not in text.lower() and PHONE_DIGITS not in text
    assert doc["identifiers"] == []
    assert [e["reason"] for e in doc["erasures"]] == ["Asked at the counter"]
    assert len(doc["episodes"]) == 4


def test_a_long_history_is_exported_in_pages_with_a_bounded_number_of_queries(
    org, main_st, django_assert_max_num_queries
):
    customer = CustomerFactory.create(organization=org, name="Long Story")
    start = timezone.now() - timedelta(days=400)
    Episode.objects.bulk_create(
        Episode(organization=org, customer=customer, kind="visit", occurred_at=at)
        for at in (start + timedelta(hours=i) for i in range(1203))
    )

    with django_assert_max_num_queries(20):
        chunks = list(export_customer(customer=customer))

    doc = json.loads(b"".join(chunks))
    occurred = [e["occurred_at"] for e in doc["episodes"]]
    assert len(occurred) == 1203 and occurred == sorted(occurred, reverse=True)
    assert len(chunks) > 5  # streamed in pieces, not built whole


# --- the API and who may use it --------------------------------------------------------------


def session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_an_owner_exports_over_the_api(org, main_st, api, owner):
    customer = full_record(org, api, now=timezone.now())
    response = session(owner).get(f"/api/v1/customers/{customer.pk}/export/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert json.loads(streamed(response))["customer"]["name"] == PERSON["name"]


def test_an_org_wide_key_erases_over_the_api(org, main_st, api):
    customer = full_record(org, api, now=timezone.now())
    response = api.post(
        f"/api/v1/customers/{customer.pk}/erase/", {"reason": "Ticket 512"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["customer"], body["reason"]) == (customer.pk, "Ticket 512")
    assert body["cleared"]["identifiers"] == 4
    erasure = Erasure.objects.get()
    assert erasure.by_api_key is not None and erasure.by_api_key.name == "HQ"
    assert Customer.objects.get(pk=customer.pk).name == ""


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}])
def test_erase_without_a_usable_reason_is_a_400_naming_it(org, main_st, api, body):
    customer = full_record(org, api, now=timezone.now())
    response = api.post(f"/api/v1/customers/{customer.pk}/erase/", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "reason"
    assert Customer.objects.get(pk=customer.pk).name == PERSON["name"]


@pytest.fixture
def personas(owner, manager, staff, outsider, org_key, till_key, other_org) -> dict[str, APIClient]:
    return {
        "owner": session(owner),
        "org key": key_client(org_key),
        "manager": session(manager),
        "staff": session(staff),
        "location key": key_client(till_key),
        "outsider": session(outsider),
        "outsider org key": key_client(create_api_key(organization=other_org, name="HQ")[1]),
    }


EXPECTED = {
    "owner": 200,
    "org key": 200,
    "manager": 403,
    "staff": 403,
    "location key": 403,
    "outsider": 404,
    "outsider org key": 404,
}


@pytest.mark.parametrize("persona", EXPECTED)
@pytest.mark.parametrize("action", ["export", "erase"])
def test_only_owners_and_org_wide_keys_may_export_or_erase(
    org, main_st, api, personas, persona, action
):
    customer = full_record(org, api, now=timezone.now())
    url = f"/api/v1/customers/{customer.pk}/{action}/"
    client = personas[persona]
    response = (
        client.get(url)
        if action == "export"
        else client.post(url, {"reason": "Asked"}, format="json")
    )

    assert response.status_code == EXPECTED[persona]
    if response.status_code == 403:
        assert response.json()["error"] == "permission_denied"
        assert "owners and organization-wide keys" in response.json()["message"]
    if response.status_code == 404:
        # Exactly what a customer that does not exist answers.
        missing = f"/api/v1/customers/{customer.pk + 10_000}/{action}/"
        same = (
            client.get(missing)
            if action == "export"
            else client.post(missing, {"reason": "x"}, format="json")
        )
        assert (same.status_code, same.json()) == (404, response.json())
    erased = Erasure.objects.exists()
    assert erased is (action == "erase" and EXPECTED[persona] == 200)
    assert Customer.objects.get(pk=customer.pk).name == ("" if erased else PERSON["name"])


def test_anonymous_callers_are_401(org, main_st, api):
    customer = full_record(org, api, now=timezone.now())
    anonymous = APIClient()
    assert anonymous.get(f"/api/v1/customers/{customer.pk}/export/").status_code == 401
    erase = anonymous.post(f"/api/v1/customers/{customer.pk}/erase/", {"reason": "x"})
    assert erase.status_code == 401


def test_both_endpoints_are_in_the_schema_with_their_errors(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    export = schema["paths"]["/api/v1/customers/{id}/export/"]["get"]
    erase = schema["paths"]["/api/v1/customers/{id}/erase/"]["post"]
    assert {"200", "403", "404"} <= set(export["responses"])
    assert {"200", "400", "403", "404"} <= set(erase["responses"])
    assert "creates a new customer" in erase["description"]
    document = schema["components"]["schemas"]["CustomerExportSchema"]["properties"]
    assert SECTIONS | {"customer"} <= set(document)
    reason = schema["components"]["schemas"]["EraseInputRequest"]["properties"]["reason"]
    assert "do not put" in reason["description"]

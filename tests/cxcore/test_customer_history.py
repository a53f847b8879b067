"""A customer's card keeps its history (cxcore.services.customers, CustomerEdit): every change
through the services says who, when, which fields, and the values before and after; the
customer page shows it; an erasure keeps the rows and loses the values."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.errors import InvalidInput
from accounts.models import ApiKey
from cxcore.models import CustomerEdit
from cxcore.privacy import erase_customer, export_customer
from cxcore.services import EpisodeInput, record_episode, update_customer
from recovery.services import merge_customers
from tests.factories import CustomerFactory, IdentifierFactory


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def bea(org, main_st):
    return record_episode(
        organization=org,
        data=EpisodeInput(
            kind="visit",
            identifiers={"phone": "07400 222001"},
            name="Bea",
            location=main_st,
            occurred_at=timezone.now() - timedelta(days=3),
        ),
    ).episode.customer


def edits(customer) -> list[tuple[str, list[str], dict]]:
    return [
        (e.kind, e.fields, e.changes)
        for e in CustomerEdit.objects.filter(customer=customer).order_by("id")
    ]


def test_an_edit_keeps_who_when_which_fields_and_old_and_new(bea, owner):
    update_customer(customer=bea, name="Beatrice", notes="Oat milk", by_user=owner)
    (edit,) = CustomerEdit.objects.filter(customer=bea)
    assert (edit.kind, edit.fields, edit.by_user, edit.organization_id) == (
        "edit", ["name", "notes"], owner, bea.organization_id,
    )  # fmt: skip
    assert edit.changes == {
        "name": {"old": "Bea", "new": "Beatrice"},
        "notes": {"old": "", "new": "Oat milk"},
    }


def test_only_the_fields_that_changed_are_recorded_and_a_no_op_records_nothing(bea, owner):
    update_customer(customer=bea, name="Bea", notes="", by_user=owner)
    assert edits(bea) == []
    update_customer(customer=bea, name="Bea", notes="Window seat", by_user=owner)
    assert edits(bea) == [("edit", ["notes"], {"notes": {"old": "", "new": "Window seat"}})]


def test_the_old_value_is_the_stored_one_not_a_stale_copy(bea, owner):
    stale = type(bea).objects.get(pk=bea.pk)
    update_customer(customer=bea, notes="First", by_user=owner)
    update_customer(customer=stale, notes="Second", by_user=owner)
    assert [e[2]["notes"] for e in edits(bea)] == [
        {"old": "", "new": "First"},
        {"old": "First", "new": "Second"},
    ]


def test_a_refused_edit_changes_nothing(bea):
    with pytest.raises(InvalidInput):
        update_customer(customer=bea, visit_count=99)
    assert edits(bea) == []


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_edits_each_record_what_they_replaced(org, main_st):
    customer = CustomerFactory.create(organization=org, name="Cy", notes="zero")
    barrier = threading.Barrier(2)

    def edit(text: str) -> None:
        try:
            barrier.wait(timeout=5)
            update_customer(customer=type(customer).objects.get(pk=customer.pk), notes=text)
        finally:
            connection.close()

    threads = [threading.Thread(target=edit, args=(t,)) for t in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    chain = [e[2]["notes"] for e in edits(customer)]
    # The second edit replaced what the first wrote, whichever came first: no lost update.
    assert chain[0]["old"] == "zero" and chain[1]["old"] == chain[0]["new"]
    customer.refresh_from_db()
    assert customer.notes == chain[1]["new"]


def test_the_api_and_the_notes_page_record_their_actor(bea, api, owner):
    assert (
        api.patch(f"/api/v1/customers/{bea.pk}/", {"name": "B."}, format="json").status_code == 200
    )
    logged_in(owner).post(f"/customers/{bea.pk}/notes/", {"notes": "Allergic to nuts"})
    first, second = CustomerEdit.objects.filter(customer=bea).order_by("id")
    assert (first.by_api_key, first.by_user, first.fields) == (
        ApiKey.objects.get(name="HQ"),
        None,
        ["name"],
    )
    assert (second.by_user, second.fields) == (owner, ["notes"])


def test_a_bad_patch_is_400_and_records_nothing(bea, api):
    response = api.patch(f"/api/v1/customers/{bea.pk}/", {"name": "x" * 201}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "name"
    assert edits(bea) == []


def test_identifiers_and_a_name_learnt_from_an_episode_are_history(org, main_st, till):
    nameless = CustomerFactory.create(organization=org, name="")
    IdentifierFactory(customer=nameless, organization=org, kind="phone", value="+447400222009")
    body = {
        "customer": {"phone": "07400 222009", "email": "Cara@Example.com", "name": "Cara"},
        "kind": "visit",
    }
    assert till.post("/api/v1/episodes/", body, format="json").status_code == 201
    (edit,) = CustomerEdit.objects.filter(customer=nameless)
    assert edit.by_api_key is not None
    assert (edit.kind, edit.fields, edit.by_api_key.name) == (
        "learnt",
        ["email", "name"],
        "Main St till",
    )
    assert edit.changes == {
        "email": {"old": None, "new": "cara@example.com"},
        "name": {"old": "", "new": "Cara"},
    }
    # Nothing new the second time: no history row.
    assert till.post("/api/v1/episodes/", body, format="json").status_code == 201
    assert CustomerEdit.objects.filter(customer=nameless).count() == 1


def test_a_merge_keeps_both_histories_and_records_itself(org, main_st, owner, bea):
    duplicate = CustomerFactory.create(organization=org, name="", notes="Sits by the door")
    IdentifierFactory(customer=duplicate, organization=org, kind="email", value="bea@example.com")
    update_customer(customer=duplicate, notes="Sits by the window", by_user=owner)
    merge_customers(into=bea, duplicate=duplicate)
    kinds = [e[0] for e in edits(bea)]
    assert kinds == ["edit", "merge"]  # the duplicate's edit moved over, then the merge
    merge = CustomerEdit.objects.get(customer=bea, kind="merge")
    assert merge.fields == ["identifiers", "merged_customer", "notes"]
    assert merge.changes["identifiers"]["new"] == ["email:bea@example.com"]
    assert merge.changes["merged_customer"]["old"] == duplicate.pk


def test_the_customer_page_says_who_edited_what_and_when(bea, owner, staff):
    owner.name = "Olive Owner"
    owner.save()
    update_customer(
        customer=bea, name="Beatrice", by_user=owner, now=timezone.now() - timedelta(days=3)
    )
    update_customer(customer=bea, notes="Oat milk", by_user=staff)
    text = logged_in(staff).get(f"/customers/{bea.pk}/").content.decode()
    assert "Edited by Olive Owner · <time" in text and "3\xa0days ago</time>: name" in text
    assert f"Edited by {staff.email}" in text
    assert text.index(f"Edited by {staff.email}") < text.index("Edited by Olive Owner")


def test_the_export_lists_the_edits_and_an_erasure_keeps_them_without_values(bea, owner):
    update_customer(customer=bea, name="Beatrice Zq9", by_user=owner)
    doc = json.loads(b"".join(export_customer(customer=bea)))
    assert [(e["kind"], e["actor"], e["fields"]) for e in doc["customer_edits"]] == [
        ("edit", "staff", ["name"])
    ]
    erase_customer(customer=bea, reason="Asked by email")
    assert edits(bea) == [("edit", ["name"], {})]
    text = b"".join(export_customer(customer=bea)).decode()
    assert "Zq9" not in text and json.loads(text)["customer_edits"][0]["changes"] == {}


def test_identifiers_learnt_through_the_bulk_endpoint_are_history_too(org, main_st, till, bea):
    body = {
        "episodes": [
            {"customer": {"phone": "07400 222001", "email": "bea@example.com"}, "kind": "visit"},
            {"customer": {"phone": "07400 222001", "card": "CARD-77"}, "kind": "visit"},
            {"customer": {"phone": "07400 999001"}, "kind": "visit"},  # a new customer: no edit
        ]
    }
    response = till.post("/api/v1/episodes/bulk/", body, format="json")
    assert response.json()["created"] == 3
    (edit,) = CustomerEdit.objects.all()
    assert edit.customer_id == bea.pk and edit.kind == "learnt"
    assert edit.by_api_key == ApiKey.objects.get(name="Main St till")
    assert edit.changes == {
        "card": {"old": None, "new": "CARD-77"},
        "email": {"old": None, "new": "bea@example.com"},
    }

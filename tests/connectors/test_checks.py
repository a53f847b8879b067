"""POST /api/v1/checks/: one order episode, and a negative incident for every comped, voided
or remade line with a reason, on the touchpoint its reason maps to."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection as db_connection
from django.utils import timezone

from connectors.models import Check
from cxcore.models import Customer, Episode
from recovery.models import RecoveryCase
from recovery.sweep import sweep_recovery
from tests.conftest import key_client

CHECKS = "/api/v1/checks/"


def check(**overrides) -> dict:
    body = {
        "customer": {"phone": "+447400123456", "name": "Dan Reyes"},
        "location": "main-st",
        "occurred_at": (timezone.now() - timedelta(minutes=30)).isoformat(),
        "external_id": "CHK-1001",
        "lines": [
            {"name": "Almond-milk latte", "quantity": 1, "price": "3.40", "status": "ok"},
            {
                "name": "Salad",
                "quantity": 1,
                "price": "8.50",
                "status": "voided",
                "reason": "never rung in",
            },
        ],
    }
    body.update(overrides)
    return body


def snapshot() -> dict:
    return {
        "episodes": list(Episode.objects.order_by("pk").values_list("pk", "kind")),
        "customers": Customer.objects.count(),
        "checks": Check.objects.count(),
    }


def test_a_check_is_an_order_with_its_lines_and_an_incident_per_voided_line(api, org):
    response = api.post(CHECKS, check(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    order = Episode.objects.get(pk=body["order"]["id"])
    assert (order.kind, order.source, getattr(order.location, "slug", None)) == (
        "order",
        "pos",
        "main-st",
    )
    assert order.items == [
        {"name": "Almond-milk latte", "quantity": 1, "price": "3.40"},
        {
            "name": "Salad",
            "quantity": 1,
            "price": "0.00",
            "status": "voided",
            "list_price": "8.50",
            "reason": "never rung in",
        },
    ]
    (incident_json,) = body["incidents"]
    incident = Episode.objects.get(pk=incident_json["id"])
    assert incident.kind == "incident" and incident.experience == -2
    assert incident.touchpoints == [{"code": "order_accuracy", "third_party": False}]
    assert incident.summary == "Salad never rung in (voided)"
    assert incident.customer_id == order.customer_id
    customer = order.customer
    assert customer.total_spend == Decimal("3.40")  # the voided salad was not paid for
    assert customer.last_experience == -2


@pytest.mark.parametrize(
    ("status", "reason", "touchpoint", "experience"),
    [
        ("comped", "Latte cold", "food_and_drink", -1),
        ("remade", "remade: wrong milk", "food_and_drink", -1),
        ("voided", "Forgotten in the rush", "order_accuracy", -2),
        ("comped", "not made", "order_accuracy", -2),
        ("remade", "wrong item", "order_accuracy", -1),
        ("comped", "quality", "food_and_drink", -1),
        ("comped", "long wait at the pass", "wait", -1),
        ("comped", "manager's goodwill", "other", -1),
    ],
)
def test_each_status_and_reason_maps_to_its_touchpoint_and_experience(
    api, main_st, status, reason, touchpoint, experience
):
    lines = [{"name": "Latte", "price": "3.40", "status": status, "reason": reason}]
    response = api.post(CHECKS, check(lines=lines), format="json")
    assert response.status_code == 201, response.content
    (incident,) = response.json()["incidents"]
    assert incident["touchpoints"] == [{"code": touchpoint, "third_party": False}]
    assert incident["experience"] == experience


def test_a_remade_line_is_still_paid_for_and_an_ok_line_is_no_incident(api, main_st):
    lines = [
        {"name": "Flat white", "price": "3.00", "status": "remade", "reason": "cold"},
        {"name": "Croissant", "price": "2.50", "status": "ok", "reason": "ignored"},
        {"name": "Cookie", "price": "1.50", "status": "comped"},  # no reason: no incident
    ]
    response = api.post(CHECKS, check(lines=lines), format="json")
    assert len(response.json()["incidents"]) == 1
    assert Customer.objects.get().total_spend == Decimal("5.50")


def test_a_check_with_nothing_wrong_is_only_an_order(api, main_st):
    lines = [{"name": "Latte", "price": "3.40"}]
    response = api.post(CHECKS, check(lines=lines), format="json")
    assert response.json()["incidents"] == []
    assert list(Episode.objects.values_list("kind", flat=True)) == ["order"]


def test_the_regular_whose_salad_was_never_rung_in_gets_a_case_without_complaining(api, org):
    api.post(
        CHECKS, check(occurred_at=(timezone.now() - timedelta(hours=5)).isoformat()), format="json"
    )
    sweep_recovery(now=timezone.now())
    case = RecoveryCase.objects.get()
    assert case.touchpoints == ["order_accuracy"] and case.worst_experience == -2


def test_a_retried_check_returns_the_first_result_and_adds_nothing(api, main_st):
    body = check()
    first = api.post(CHECKS, body, format="json")
    before = snapshot()
    again = api.post(CHECKS, body, format="json")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert snapshot() == before


def test_another_check_under_the_same_external_id_is_409_and_changes_nothing(api, main_st):
    api.post(CHECKS, check(), format="json")
    before = snapshot()
    other = check(lines=[{"name": "Cake", "price": "4.00", "status": "comped", "reason": "cold"}])
    response = api.post(CHECKS, other, format="json")
    assert response.status_code == 409
    assert response.json()["errors"][0] == {
        "field": "external_id",
        "code": "external_id_reused",
        "message": "Another check was logged with this external_id.",
    }
    assert snapshot() == before


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([{"name": "A"}, {"name": "B"}, {"name": "C", "status": "burnt"}], "lines[2].status"),
        ([{"name": "A", "price": "-1"}], "lines[0].price"),
        ([{"name": "A"}, {"quantity": 2}], "lines[1].name"),
        ([{"name": "A", "quantity": 0}], "lines[0].quantity"),
        ([{"name": "Latte\x86"}], "lines[0].name"),
        ([{"name": "Latte", "status": "comped", "reason": "cold\u202e"}], "lines[0].reason"),
        ([{"name": "Latte", "price": 3.4}], "lines[0].price"),
        ([], "lines"),
        ("salad", "lines"),
    ],
)
def test_a_bad_line_is_400_naming_the_line_and_changes_nothing(api, main_st, lines, field):
    before = snapshot()
    response = api.post(CHECKS, check(lines=lines), format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == field
    assert snapshot() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"external_id": ""}, "external_id"),
        ({"occurred_at": "2026-01-01T10:00:00"}, "occurred_at"),
        ({"occurred_at": (timezone.now() + timedelta(days=2)).isoformat()}, "occurred_at"),
        ({"customer": {}}, "customer"),
        ({"customer": {"phone": "not a phone"}}, "customer.phone"),
    ],
)
def test_bad_check_fields_are_400_naming_the_field(api, main_st, change, field):
    before = snapshot()
    response = api.post(CHECKS, check(**change), format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == field
    assert snapshot() == before


def test_a_location_key_logs_checks_only_at_its_location(till, main_st, harbour):
    elsewhere = till.post(CHECKS, check(location="harbour-rd"), format="json")
    assert elsewhere.status_code == 404
    assert elsewhere.json()["errors"][0]["field"] == "location"
    assert not Episode.objects.exists()
    body = check(external_id="CHK-2")
    del body["location"]  # the key's own location
    here = till.post(CHECKS, body, format="json")
    assert here.status_code == 201
    assert here.json()["order"]["location"] == "main-st"


def test_another_organizations_customer_id_is_404(api, outsider_api, other_location):
    theirs = outsider_api.post(CHECKS, check(location="elsewhere"), format="json")
    assert theirs.status_code == 201
    their_customer = theirs.json()["order"]["customer"]
    before = snapshot()
    response = api.post(CHECKS, check(customer={"id": their_customer}), format="json")
    assert response.status_code == 404
    assert snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_check_record_it_once(org_key, main_st):
    results = []
    body = check()

    def post() -> None:
        try:
            results.append(key_client(org_key).post(CHECKS, body, format="json").status_code)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200, 200, 200, 201]
    assert Episode.objects.filter(kind="order").count() == 1
    assert Episode.objects.filter(kind="incident").count() == 1


def test_an_idempotency_key_replays_the_check_too(api, main_st):
    body = check()
    first = api.post(CHECKS, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post(CHECKS, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201 and again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert Episode.objects.count() == 2


@pytest.mark.parametrize(
    ("raised", "line", "named"),
    [
        ("items[2].name", None, "lines[2].name"),
        ("summary", 1, "lines[1].reason"),
        ("occurred_at", None, "occurred_at"),
    ],
)
def test_a_refusal_by_the_narrative_names_the_line_the_client_sent(raised, line, named):
    from accounts.errors import InvalidInput
    from connectors.checks import errors_named_by_line

    with pytest.raises(InvalidInput) as caught, errors_named_by_line(line=line):
        raise InvalidInput("Refused.", field=raised)
    assert caught.value.field == named

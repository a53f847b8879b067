"""Every producer writes its events into the outbox in its own transaction, with what a POS
needs for a badge and no contact details. Every organization's events are logged (the log a
polling POS reads); only endpoints get deliveries."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from cxcore.privacy import erase_customer
from cxcore.services import EpisodeInput, record_episode, record_episodes_bulk
from recovery.escalation import escalate_overdue
from recovery.events import Actor
from recovery.models import RecoveryCase
from recovery.outcomes import measure_outcomes
from recovery.services import (
    acknowledge_case,
    create_default_playbooks,
    dismiss_case,
    merge_customers,
    record_prompts_shown,
    resolve_case,
)
from recovery.sweep import sweep_recovery
from tests.factories import CustomerFactory
from tests.webhooks.helpers import make_endpoint
from webhooks.delivery import deliver_due
from webhooks.models import WebhookDelivery, WebhookEvent

pytestmark = pytest.mark.django_db

PHONE = "+447400123456"
EMAIL = "dan@example.com"


@pytest.fixture
def endpoint(org, receiver):
    return make_endpoint(org, receiver.url)[0]


@pytest.fixture
def open_case(org, main_st, endpoint):
    """Dan's forgotten order, flagged by the sweep."""
    create_default_playbooks(organization=org)
    complaint = record_episode(
        organization=org,
        data=EpisodeInput(
            kind="complaint",
            identifiers={"phone": PHONE, "email": EMAIL},
            name="Daniel Reyes",
            summary="The cashier forgot my salad and latte; I left hungry.",
            touchpoints=[{"code": "order_accuracy", "third_party": False}],
            experience=-2,
            location=main_st,
        ),
    ).episode
    sweep_recovery(now=complaint.occurred_at + timedelta(hours=3))
    return RecoveryCase.objects.get(customer_id=complaint.customer_id)


def types() -> list[str]:
    return list(WebhookEvent.objects.order_by("id").values_list("type", flat=True))


def test_episode_created_carries_ids_and_no_contact_details(org, main_st, endpoint, api):
    response = api.post(
        "/api/v1/episodes/",
        {"customer": {"phone": PHONE, "email": EMAIL, "name": "Dan"}, "kind": "visit",
         "location": "main-st", "summary": f"Call me on {PHONE}", "experience": 1},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    event = WebhookEvent.objects.get()
    assert event.type == "episode.created"
    assert event.data == {
        "episode": {
            "id": response.json()["id"],
            "kind": "visit",
            "occurred_at": event.data["episode"]["occurred_at"],
            "source": "api",
            "experience": 1,
            "touchpoints": [],
            "location": "main-st",
        },
        "customer": {"id": event.customer_id},
    }
    text = json.dumps(event.data)
    assert PHONE not in text and EMAIL not in text and "Dan" not in text
    assert WebhookDelivery.objects.get().endpoint == endpoint


def test_bulk_episodes_emit_one_event_each_in_a_fixed_number_of_queries(
    org, endpoint, django_assert_max_num_queries
):
    items = [EpisodeInput(kind="visit", identifiers={"card": f"C{n}"}) for n in range(200)]
    record_episodes_bulk(organization=org, items=items)
    assert WebhookEvent.objects.filter(type="episode.created").count() == 200
    assert WebhookDelivery.objects.count() == 200
    more = [EpisodeInput(kind="visit", identifiers={"card": f"C{n}"}) for n in range(200)]
    with django_assert_max_num_queries(40):  # the bulk write itself is most of these
        record_episodes_bulk(organization=org, items=more)


def test_an_organization_without_endpoints_logs_its_events_for_polling_but_delivers_none(
    org, main_st, other_org, receiver
):
    """A POS that prefers to poll GET /api/v1/events/ has no endpoint; its log is still whole."""
    make_endpoint(other_org, receiver.url)  # someone else's endpoint sends nothing of ours
    create_default_playbooks(organization=org)
    complaint = record_episode(
        organization=org,
        data=EpisodeInput(
            kind="complaint",
            identifiers={"card": "X"},
            name="Daniel Reyes",
            summary="The cashier forgot my salad.",
            touchpoints=[{"code": "order_accuracy", "third_party": False}],
            experience=-2,
            location=main_st,
        ),
    ).episode
    record_episodes_bulk(
        organization=org, items=[EpisodeInput(kind="visit", identifiers={"card": "Y"})]
    )
    sweep_recovery(now=complaint.occurred_at + timedelta(hours=3))
    logged = list(WebhookEvent.objects.filter(organization=org).values_list("type", flat=True))
    assert sorted(logged) == ["case.opened", "episode.created", "episode.created"]
    case = WebhookEvent.objects.get(organization=org, type="case.opened")
    assert case.data["case"]["headline"].startswith("Daniel — the cashier forgot my salad")
    assert not WebhookDelivery.objects.filter(organization_id=org.pk).exists()
    deliver_due()
    assert receiver.requests == []


def test_the_sweep_emits_case_opened_with_severity_location_and_headline(open_case):
    event = WebhookEvent.objects.get(type="case.opened")
    assert event.data["case"] == {
        "id": open_case.pk,
        "kind": "recovery",
        "status": "open",
        "severity": "high",
        "location": "main-st",
        "headline": event.data["case"]["headline"],
    }
    assert event.data["case"]["headline"].startswith("Daniel — the cashier forgot my salad")
    assert event.data["customer"] == {"id": open_case.customer_id}
    assert PHONE not in json.dumps(event.data) and EMAIL not in json.dumps(event.data)


def test_working_a_case_emits_each_step(org, main_st, open_case, owner):
    actor = Actor(user=owner, location=main_st)
    record_prompts_shown(cases=[open_case], actor=actor)
    acknowledge_case(case=open_case, actor=actor)
    resolve_case(case=open_case, note="Comped his latte", actor=actor)
    assert types()[-4:] == ["prompt.shown", "case.acknowledged", "episode.created", "case.resolved"]
    shown = WebhookEvent.objects.get(type="prompt.shown")
    assert shown.data["shown_at"] == "main-st"
    resolved = WebhookEvent.objects.get(type="case.resolved")
    assert resolved.data["case"]["status"] == "resolved"
    assert "Comped" not in json.dumps(resolved.data)  # staff's note stays in the history


def test_dismissal_escalation_and_outcome_are_emitted(org, open_case):
    escalate_overdue(now=open_case.ack_due_at + timedelta(minutes=1))
    assert WebhookEvent.objects.filter(type="case.escalated").count() == 1
    dismiss_case(case=open_case, reason="Called Dan at 07400 123456")
    dismissed = WebhookEvent.objects.get(type="case.dismissed")
    assert "07400" not in json.dumps(dismissed.data)
    open_case.refresh_from_db()
    measure_outcomes(now=open_case.outcome_due_at + timedelta(minutes=1))
    measured = WebhookEvent.objects.get(type="case.outcome_measured")
    assert measured.data["case"]["outcome"] == "lost"


def test_merging_and_erasing_customers_are_emitted_and_erasure_scrubs_headlines(org, open_case):
    duplicate = CustomerFactory.create(organization=org, name="Dan R")
    merge_customers(into=open_case.customer, duplicate=duplicate)
    merged = WebhookEvent.objects.get(type="customer.merged")
    assert merged.data == {
        "customer": {"id": open_case.customer_id},
        "merged": {"id": duplicate.pk},
    }
    erase_customer(customer=open_case.customer, reason="Asked to be forgotten")
    assert WebhookEvent.objects.get(type="customer.erased").data == {
        "customer": {"id": open_case.customer_id}
    }
    for event in WebhookEvent.objects.filter(customer_id=open_case.customer_id):
        assert "Daniel" not in json.dumps(event.data), event.type


def test_a_subscription_limits_deliveries_not_the_event_log(org, main_st, receiver):
    only_cases, _ = make_endpoint(org, receiver.url, ["case.opened"])
    record_episode(organization=org, data=EpisodeInput(kind="visit", identifiers={"card": "Z"}))
    assert WebhookEvent.objects.filter(type="episode.created").count() == 1
    assert not WebhookDelivery.objects.exists()
    assert deliver_due().sent == 0
    assert only_cases.events == ["case.opened"]


@pytest.mark.parametrize(
    ("kind", "event_type", "webhook"),
    [
        ("recovery", "opened", "case.opened"),
        ("care", "opened", "care.opened"),
        ("recovery", "acknowledged", "case.acknowledged"),
        ("recovery", "escalated", "case.escalated"),
        ("recovery", "resolved", "case.resolved"),
        ("care", "dismissed", "case.dismissed"),
        ("recovery", "outcome", "case.outcome_measured"),
        ("recovery", "shown", "prompt.shown"),
        ("recovery", "reminder", "case.reminder"),  # "they're coming back" (connectors)
        ("recovery", "assigned", None),
        ("recovery", "not_now", None),
        ("recovery", "deviation", None),
        ("recovery", "reopened", None),
    ],
)
def test_each_case_history_type_maps_to_its_webhook(kind, event_type, webhook):
    from recovery.models import CaseEvent
    from recovery.outbound import webhook_type

    case = RecoveryCase(kind=kind)
    assert webhook_type(CaseEvent(case=case, type=event_type), case) == webhook


def test_a_booking_for_a_customer_with_an_open_case_sends_case_reminder(org, main_st, open_case):
    from recovery.reminders import remind_of_reservation

    booking = record_episode(
        organization=org,
        data=EpisodeInput(
            kind="reservation",
            customer_id=open_case.customer_id,
            summary="Sat 19:00 for 2",
            location=main_st,
        ),
    ).episode
    assert remind_of_reservation(episode_id=booking.pk) is not None
    reminder = WebhookEvent.objects.get(type="case.reminder")
    assert reminder.data["case"]["id"] == open_case.pk
    assert reminder.data["customer"] == {"id": open_case.customer_id}


def test_a_regular_gone_quiet_sends_care_opened_with_the_care_headline(org, endpoint):
    from recovery.sweep import sweep_care
    from tests.recovery.test_care import weekly_regular

    create_default_playbooks(organization=org)
    regular = weekly_regular(org)
    assert regular.last_visit_at is not None
    sweep_care(now=regular.last_visit_at + timedelta(weeks=3, hours=1))
    event = WebhookEvent.objects.get(type="care.opened")
    assert event.data["case"]["kind"] == "care" and event.data["case"]["severity"] == "low"
    assert event.data["case"]["headline"].startswith("Grace — usually weekly")

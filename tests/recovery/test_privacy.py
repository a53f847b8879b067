"""Recovery's part of the data rights (recovery/privacy.py): cases are in the export; erase
replaces their texts (actions rendered with the first name and usual order, dismissal reasons,
resolution notes), dismisses open ones through the lifecycle, and no case opens afterwards."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tenancy import Tenant
from cxcore.models import Customer, Episode
from cxcore.privacy import ERASED, ERASED_REASON, erase_customer, export_customer
from recovery.insights import summary
from recovery.lifecycle import Reason
from recovery.models import CaseEventType, CaseStatus, RecoveryCase
from recovery.privacy import scrub_event_data
from recovery.reconcile import reconcile
from recovery.services import Actor, assign_case, dismiss_case, resolve_case
from recovery.sweep import sweep_care, sweep_recovery
from tests.cxcore.test_privacy import (
    FIRST_NAME,
    ITEM,
    MARK,
    created_by_api,
    personal_traces,
    pg_dump,
)
from tests.factories import CustomerFactory
from tests.recovery.conftest import log

ORDER_MIX_UP = [{"code": "order_accuracy", "third_party": False}]


@dataclass
class Story:
    customer: Customer
    resolved: RecoveryCase
    dismissed: RecoveryCase
    open: RecoveryCase
    base: datetime


def complaint(org, customer, at, text):
    return log(org, customer, at, kind="complaint", summary=text, touchpoints=ORDER_MIX_UP,
               experience=-2)  # fmt: skip


def opened_by_sweep(at) -> RecoveryCase:
    assert sweep_recovery(now=at).opened == 1
    return RecoveryCase.objects.filter(status=CaseStatus.OPEN).get()


def live_story(org, api: APIClient, owner: User, staff: User) -> Story:
    """A regular whose order was forgotten three times: one case resolved with a note, one
    dismissed with a reason, one open (assigned) when the erasure comes."""
    base = timezone.now() - timedelta(days=120)
    created = created_by_api(api, occurred_at=(base - timedelta(days=20)).isoformat())
    customer = Customer.objects.get(pk=created["customer"])
    for days in (16, 12, 8):
        log(org, customer, base - timedelta(days=days), kind="order", items=[ITEM])

    complaint(org, customer, base, "Qx7: forgot my salad and latte")
    resolved = opened_by_sweep(base + timedelta(hours=3))
    actions = list(resolved.actions.all())
    assert actions[0].text.startswith(f"Apologise to {FIRST_NAME} by name")
    assert actions[1].text == f"Comp their usual {ITEM['name']}"
    resolve_case(
        case=resolved,
        note="Qx7note: comped two lattes, he was fine",
        action_ids=[a.pk for a in actions[:2]],
        actor=Actor(user=owner),
        now=base + timedelta(days=1),
    )

    complaint(org, customer, base + timedelta(days=40), "Qx7: wrong milk again")
    dismissed = opened_by_sweep(base + timedelta(days=40, hours=3))
    dismiss_case(
        case=dismissed,
        reason=f"Qx7dismiss: {FIRST_NAME} said to leave it",
        actor=Actor(user=owner),
        now=base + timedelta(days=41),
    )

    complaint(org, customer, base + timedelta(days=60), "Qx7: nobody took my order")
    still_open = opened_by_sweep(base + timedelta(days=60, hours=3))
    assign_case(case=still_open, assignee=staff, actor=Actor(user=owner))
    customer.refresh_from_db()
    return Story(customer, resolved, dismissed, still_open, base)


@pytest.fixture
def story(org, main_st, playbooks, api, owner, staff) -> Story:
    return live_story(org, api, owner, staff)


def period_figures(org, base: datetime):
    return summary(
        tenant=Tenant(organization=org),
        start=(base - timedelta(days=30)).date(),
        end=timezone.now().date(),
    )


@pytest.mark.django_db(transaction=True)
def test_after_erase_no_case_text_of_the_person_is_left_and_the_figures_hold(
    org, main_st, playbooks, api, owner, staff
):
    story = live_story(org, api, owner, staff)
    episodes = Episode.objects.filter(organization=org).count()
    figures = period_figures(org, story.base)
    before = pg_dump()
    assert FIRST_NAME in before and ITEM["name"] in before and "Qx7dismiss" in before

    erase_customer(customer=story.customer, reason="Asked by email", by_user=owner)

    assert personal_traces(pg_dump()) == []
    assert Episode.objects.filter(organization=org).count() == episodes
    assert period_figures(org, story.base) == figures
    assert figures.negative_experiences >= 3 and figures.cases_opened == 3


def test_erase_dismisses_open_cases_through_the_lifecycle(org, story, owner):
    erase_customer(customer=story.customer, reason="Asked", by_user=owner)

    case = RecoveryCase.objects.get(pk=story.open.pk)
    assert (case.status, case.dismiss_reason, case.closed_by) == (
        CaseStatus.DISMISSED,
        ERASED_REASON,
        owner,
    )
    event = case.events.last()
    assert event is not None
    assert (event.type, event.data, event.actor_user) == (
        CaseEventType.DISMISSED,
        {"reason": ERASED_REASON},
        owner,
    )
    assert not RecoveryCase.objects.open().exists()
    customer = Customer.objects.get(pk=story.customer.pk)
    assert not customer.recovery_case_open and not customer.care_case_open


def test_erase_replaces_every_case_text_and_keeps_the_cases(org, story):
    cases = RecoveryCase.objects.filter(customer=story.customer).count()

    erasure = erase_customer(customer=story.customer, reason="Asked")

    assert RecoveryCase.objects.filter(customer=story.customer).count() == cases == 3
    texts = {
        a.text for case in RecoveryCase.objects.filter(customer=story.customer)
        for a in case.actions.all()
    }  # fmt: skip
    assert texts == {ERASED}
    assert RecoveryCase.objects.get(pk=story.dismissed.pk).dismiss_reason == ERASED
    resolved = story.resolved.events.get(type=CaseEventType.RESOLVED)
    assert resolved.data["note"] == ERASED
    assert resolved.data["actions"] == [a.pk for a in story.resolved.actions.all()[:2]]
    assigned = story.open.events.get(type=CaseEventType.ASSIGNED)
    assert "@" in assigned.data["assignee"]  # who was assigned is the staff member's, not theirs
    assert erasure.cleared["cases_dismissed"] == 1
    assert erasure.cleared["case_dismiss_reasons"] == 1
    # The outcome window and SLAs of the closed cases are as they were.
    resolved_case = RecoveryCase.objects.get(pk=story.resolved.pk)
    assert resolved_case.status == CaseStatus.RESOLVED
    assert resolved_case.resolved_at == story.resolved.events.get(type="resolved").at


def test_no_case_opens_for_an_erased_customer_afterwards(org, main_st, playbooks):
    regular = CustomerFactory.create(organization=org, name="Grace Qx7")
    start = timezone.now() - timedelta(days=200)
    for week in range(8):
        log(org, regular, start + timedelta(weeks=week), kind="order", items=[ITEM])
    last = start + timedelta(weeks=8)
    log(org, regular, last, kind="complaint", experience=-2, touchpoints=ORDER_MIX_UP)
    regular.refresh_from_db()
    assert regular.recovery_due_at is not None and regular.care_due_at is not None

    erase_customer(customer=regular, reason="Asked")

    regular.refresh_from_db()
    assert (regular.recovery_due_at, regular.care_due_at) == (None, None)
    later = last + timedelta(days=150)
    assert sweep_recovery(now=later).opened == 0
    assert sweep_care(now=later).opened == 0
    reconcile()
    regular.refresh_from_db()
    assert (regular.recovery_due_at, regular.care_due_at) == (None, None)
    assert not RecoveryCase.objects.exists()


def test_the_export_shows_cases_with_actions_triggers_and_history(org, story, owner):
    other = CustomerFactory.create(organization=org, name="Qy9 Neighbour")
    complaint(org, other, story.base, "Qy9 complaint")
    sweep_recovery(now=story.base + timedelta(days=200))
    assert RecoveryCase.objects.filter(customer=other).exists()

    text = b"".join(export_customer(customer=story.customer)).decode()
    cases = {case["id"]: case for case in json.loads(text)["cases"]}

    assert set(cases) == {story.resolved.pk, story.dismissed.pk, story.open.pk}
    resolved = cases[story.resolved.pk]
    assert resolved["status"] == "resolved" and resolved["playbook"] == "Order mix-up"
    assert resolved["actions"][0]["text"].startswith(f"Apologise to {FIRST_NAME}")
    assert resolved["actions"][0]["taken_at"] is not None
    triggers = story.resolved.triggers.values_list("pk", flat=True)
    assert sorted(t["episode"] for t in resolved["triggers"]) == sorted(triggers)
    assert [e["type"] for e in resolved["events"]] == ["opened", "resolved"]
    assert resolved["events"][1]["actor"] == "staff"
    assert resolved["events"][1]["data"]["note"].startswith("Qx7note")
    assert cases[story.dismissed.pk]["dismiss_reason"].startswith("Qx7dismiss")
    assert "Qy9" not in text


def test_the_export_after_erase_shows_the_cases_without_their_texts(org, story):
    erase_customer(customer=story.customer, reason="Asked")
    text = b"".join(export_customer(customer=story.customer)).decode()
    assert MARK not in text.lower() and FIRST_NAME not in text
    assert len(json.loads(text)["cases"]) == 3


@pytest.mark.parametrize(
    ("data", "scrubbed"),
    [
        ({"note": "Called Dan, he was fine", "actions": [3, 4], "episode": 9},
         {"note": ERASED, "actions": [3, 4], "episode": 9}),
        ({"reason": Reason.ACK_OVERDUE.value, "severity": 3},
         {"reason": Reason.ACK_OVERDUE.value, "severity": 3}),
        ({"reason": "Dan asked us not to call"}, {"reason": ERASED}),
        ({"outcome": "recovered"}, {"outcome": "recovered"}),
        ({"assignee": "sam@cafe.example"}, {"assignee": "sam@cafe.example"}),
        ({"future_key": {"text": "Dan's words", "count": 2}},
         {"future_key": {"text": ERASED, "count": 2}}),
        ({"note": ""}, {"note": ""}),
    ],
)  # fmt: skip
def test_history_keeps_numbers_and_the_systems_words_and_nothing_typed(data, scrubbed):
    assert scrub_event_data(data) == scrubbed

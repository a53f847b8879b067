"""They're coming back: a reservation by a customer with an open case makes the case due now,
puts a reminder in its history and emails its assignee or the location's managers, once per
booking and outside quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from accounts.errors import ConflictError
from cxcore.services import EpisodeInput, record_episode
from recovery import lifecycle
from recovery.models import CaseReminder, RecoveryCase
from recovery.reminders import (
    booking_text,
    notify_reminders,
    remind_of_reservation,
    remind_of_reservations,
    reminder_line,
)
from recovery.services import Actor, acknowledge_case, assign_case, dismiss_case
from recovery.sweep import sweep_recovery
from tests.recovery.conftest import T0, forgotten_order

OPENED = T0 + timedelta(hours=6)  # the sweep after the grace period opens the case


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def case(org, main_st, playbooks, dan):
    forgotten_order(org, dan, main_st)
    # The first run ever only marks where reservations start: old bookings remind nobody.
    assert remind_of_reservations(now=OPENED) == 0
    sweep_recovery(now=OPENED)
    return RecoveryCase.objects.get()


def book(org, customer, at, *, summary="Sat 19:00 for 2", location=None, external_id=""):
    return record_episode(
        organization=org,
        data=EpisodeInput(
            kind="reservation",
            customer_id=customer.pk,
            occurred_at=at,
            summary=summary,
            location=location,
            external_id=external_id,
        ),
        now=at,
    )


def test_the_line_reads_as_the_issue_says():
    line = reminder_line(
        headline="Dan — order never rung in · 6 days ago",
        acknowledged=False,
        booking="Sat 19:00 for 2",
    )
    assert line == "Dan — order never rung in · 6 days ago, unacknowledged — booked Sat 19:00 for 2"
    assert booking_text("Booked: Sat 19:00 for 2\nwindow seat") == "Sat 19:00 for 2"
    assert booking_text("") == ""


def test_a_reservation_makes_the_case_due_now_and_reminds_it(case, dan, org, main_st, manager):
    at = OPENED + timedelta(hours=1)  # before the 4 h acknowledgement SLA would have passed
    assert case.ack_due_at > at
    reservation = book(org, dan, at, location=main_st).episode
    assert remind_of_reservations(now=at + timedelta(minutes=1)) == 1
    case.refresh_from_db()
    assert case.ack_due_at == at + timedelta(minutes=1)
    assert case.is_overdue(at + timedelta(minutes=2))
    assert case.escalated_at is None and case.escalate_at == OPENED + timedelta(hours=4)
    (event,) = case.events.filter(type="reminder")
    assert event.data["episode"] == reservation.pk
    assert event.data["booking"] == "Sat 19:00 for 2"
    assert "Daniel" in event.data["line"]


def test_the_case_page_shows_the_reminder_in_the_history(case, dan, org, main_st, owner):
    from django.test import Client

    book(org, dan, OPENED + timedelta(hours=1), location=main_st)
    remind_of_reservations(now=OPENED + timedelta(hours=1))
    client = Client()
    client.force_login(owner)
    page = client.get(f"/recovery/cases/{case.pk}/").content.decode()
    assert "Booked to come back" in page and "— booked Sat 19:00 for 2" in page


def test_the_email_says_who_what_how_long_ago_and_when_they_come(
    case, dan, org, main_st, manager, owner
):
    at = T0 + timedelta(days=6, hours=3)
    book(org, dan, at, location=main_st)
    remind_of_reservations(now=at)
    assert notify_reminders(now=at) == 1
    (email,) = mail.outbox
    assert email.to == [manager.email]  # the location's manager; owners only when there is none
    first_line = email.body.splitlines()[0]
    assert first_line == (
        "Daniel — the cashier forgot my salad and latte · 6 days ago, unacknowledged "
        "— booked Sat 19:00 for 2"
    )
    assert f"/recovery/cases/{case.pk}/" in email.body
    assert case.events.get(type="reminder").data["line"] == first_line


def test_the_assignee_is_told_rather_than_the_managers(case, dan, org, main_st, manager, owner):
    assign_case(case=case, assignee=owner, actor=Actor(user=owner))
    acknowledge_case(case=case, actor=Actor(user=owner), now=OPENED + timedelta(minutes=5))
    at = OPENED + timedelta(hours=2)
    book(org, dan, at, location=main_st)
    remind_of_reservations(now=at)
    notify_reminders(now=at)
    (email,) = mail.outbox
    assert email.to == [owner.email]
    assert ", acknowledged — booked" in email.body
    case.refresh_from_db()
    assert case.due_at == at  # acknowledged: the resolution is what is due now


def test_with_no_manager_for_the_location_the_owners_are_told(
    case, dan, org, harbour, owner, manager
):
    at = OPENED + timedelta(hours=1)
    book(org, dan, at, location=harbour)  # the manager is limited to Main St
    remind_of_reservations(now=at)
    notify_reminders(now=at)
    assert [email.to for email in mail.outbox] == [[owner.email]]


def test_once_per_booking_a_replay_or_the_same_booking_again_does_nothing_new(
    case, dan, org, main_st, manager
):
    at = OPENED + timedelta(hours=1)
    book(org, dan, at, location=main_st, external_id="R-1")
    remind_of_reservations(now=at)
    notify_reminders(now=at)
    book(org, dan, at, location=main_st, external_id="R-1")  # a replay: the same episode
    book(org, dan, at + timedelta(minutes=5), location=main_st, external_id="R-2")  # same booking
    later = at + timedelta(minutes=10)
    assert remind_of_reservations(now=later) == 0
    assert remind_of_reservations(now=later + timedelta(minutes=1)) == 0  # runs overlap: still 0
    assert notify_reminders(now=later) == 0
    assert len(mail.outbox) == 1
    assert case.events.filter(type="reminder").count() == 1
    # Another booking is news again.
    book(org, dan, later, summary="Sun 12:30 for 4", location=main_st)
    assert remind_of_reservations(now=later + timedelta(minutes=2)) == 1
    assert notify_reminders(now=later + timedelta(minutes=2)) == 1


def test_quiet_hours_hold_the_email_until_morning(case, dan, org, main_st, manager):
    night = datetime(2026, 11, 13, 23, 30, tzinfo=UTC)  # London is on UTC in November
    book(org, dan, night, location=main_st)
    assert remind_of_reservations(now=night) == 1
    assert notify_reminders(now=night) == 0
    assert CaseReminder.objects.get().notified_at is None
    assert notify_reminders(now=night + timedelta(hours=4)) == 0  # 03:30, still quiet
    morning = night + timedelta(hours=8)
    assert notify_reminders(now=morning) == 1
    assert notify_reminders(now=morning + timedelta(minutes=1)) == 0
    assert len(mail.outbox) == 1


def test_a_case_closed_before_the_morning_gets_no_reminder_email(case, dan, org, main_st, manager):
    """Like escalations (issue 11): a reminder held by quiet hours is not sent for a case
    that was closed in the meantime, and it is not kept for a later run either."""
    night = datetime(2026, 11, 13, 23, 30, tzinfo=UTC)
    book(org, dan, night, location=main_st)
    assert remind_of_reservations(now=night) == 1
    assert notify_reminders(now=night) == 0
    dismiss_case(case=case, reason="Spoke to him at the door", now=night + timedelta(hours=1))
    morning = night + timedelta(hours=8)
    assert notify_reminders(now=morning) == 0
    assert notify_reminders(now=morning + timedelta(minutes=1)) == 0
    assert mail.outbox == []
    assert CaseReminder.objects.get().notified_at == morning


def test_a_failed_email_is_tried_again(case, dan, org, main_st, manager, settings):
    at = OPENED + timedelta(hours=1)
    book(org, dan, at, location=main_st)
    remind_of_reservations(now=at)
    settings.EMAIL_BACKEND = "tests.recovery.test_reminders.FailingBackend"
    assert notify_reminders(now=at) == 0
    assert CaseReminder.objects.get().notified_at is None
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert notify_reminders(now=at + timedelta(minutes=1)) == 1


class FailingBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise OSError("mail server down")


def test_a_customer_without_an_open_case_is_not_reminded(case, dan, org, main_st, manager):
    dismiss_case(case=case, reason="spoke to him", now=OPENED + timedelta(minutes=10))
    at = OPENED + timedelta(hours=1)
    book(org, dan, at, location=main_st)
    assert remind_of_reservations(now=at) == 0
    assert not CaseReminder.objects.exists()


def test_a_reservation_logged_through_the_api_is_found(case, dan, org, main_st, api, manager):
    from django.utils import timezone

    # Now, for real: the API refuses a reservation from the future and the sweep reads the
    # recent ones. The case was opened in the fixture's past, and is still open.
    body = {
        "customer": {"id": dan.pk},
        "kind": "reservation",
        "location": "main-st",
        "summary": "Fri 20:00 for 3",
    }
    assert api.post("/api/v1/episodes/", body, format="json").status_code == 201
    assert remind_of_reservations(now=timezone.now()) == 1
    assert CaseReminder.objects.get().booking == "Fri 20:00 for 3"


def test_reminding_a_closed_case_is_refused_by_the_lifecycle(case):
    dismiss_case(case=case, reason="x", now=OPENED)
    case.refresh_from_db()
    plan = lifecycle.Remind(case.pk, lifecycle.Reason.BOOKED, 1, "Sat", "line")
    with pytest.raises(ConflictError):
        lifecycle.remind(case, plan, now=OPENED)


def test_reminding_one_reservation_twice_is_one_reminder(case, dan, org, main_st):
    reservation = book(org, dan, OPENED + timedelta(hours=1), location=main_st).episode
    assert remind_of_reservation(episode_id=reservation.pk, now=OPENED) is not None
    assert remind_of_reservation(episode_id=reservation.pk, now=OPENED) is None
    assert CaseReminder.objects.count() == 1


def test_erasing_the_customer_deletes_the_reminders_that_name_them(case, dan, org, main_st):
    from cxcore.privacy import erase_customer

    book(org, dan, OPENED + timedelta(hours=1), location=main_st)
    remind_of_reservations(now=OPENED + timedelta(hours=1))
    assert CaseReminder.objects.exists()
    erase_customer(customer=dan, reason="asked to be forgotten")
    assert not CaseReminder.objects.exists()
    assert case.events.get(type="reminder").data["line"] != ""
    assert "Daniel" not in str(case.events.get(type="reminder").data)


def test_a_reminder_is_a_case_reminder_webhook_without_contact_details(case, dan, org, main_st):
    from webhooks.models import WebhookEvent
    from webhooks.services import create_endpoint

    create_endpoint(organization=org, url="https://pos.example.com/hooks", events=["case.reminder"])
    book(org, dan, OPENED + timedelta(hours=1), location=main_st)
    remind_of_reservations(now=OPENED + timedelta(hours=1))
    (event,) = WebhookEvent.objects.filter(type="case.reminder")
    assert event.data["case"]["id"] == case.pk
    assert event.data["customer"] == {"id": dan.pk}
    assert "+44" not in str(event.data) and "@" not in str(event.data)


def test_beat_runs_the_reminders_every_minute_with_an_expiry(settings):
    from cxcore.celery import app as celery_app

    entry = settings.CELERY_BEAT_SCHEDULE["remind-reservations"]
    assert entry["task"] == "recovery.tasks.remind_reservations_task"
    assert entry["task"] in celery_app.tasks
    assert entry["options"]["expires"] < entry["schedule"].total_seconds()


def test_the_task_reminds_and_emails(case, dan, org, main_st, manager):
    from django.utils import timezone

    from recovery.tasks import remind_reservations_task

    org.quiet_hours_start = org.quiet_hours_end = 0  # none: the wall clock does not matter
    org.save()
    book(org, dan, timezone.now() - timedelta(minutes=1), location=main_st)
    assert remind_reservations_task.apply().get() == {"reminded": 1, "notified": 1}
    assert remind_reservations_task.apply().get() == {"reminded": 0, "notified": 0}
    assert len(mail.outbox) == 1

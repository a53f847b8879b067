from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from accounts.models import Role
from accounts.services import add_member
from recovery.escalation import escalate_overdue, notify_escalations
from recovery.models import RecoveryCase
from recovery.rules import is_quiet_hour
from recovery.services import Actor, acknowledge_case
from recovery.sweep import sweep_recovery
from tests.factories import UserFactory
from tests.recovery.conftest import forgotten_order


@pytest.fixture
def case(org, main_st, playbooks, dan):
    complaint = forgotten_order(org, dan, main_st)
    sweep_recovery(now=complaint.occurred_at + timedelta(hours=3))
    return RecoveryCase.objects.get()


def test_an_unacknowledged_case_is_escalated_once(case):
    assert escalate_overdue(now=case.ack_due_at - timedelta(minutes=1)) == 0
    assert escalate_overdue(now=case.ack_due_at + timedelta(minutes=1)) == 1
    assert escalate_overdue(now=case.ack_due_at + timedelta(days=3)) == 0
    case.refresh_from_db()
    assert case.severity == 4 and case.escalated_at is not None and case.escalate_at is None
    assert list(case.events.filter(type="escalated").values_list("data", flat=True)) == [
        {"reason": "acknowledgement overdue", "severity": 4}
    ]


def test_an_acknowledged_case_escalates_when_the_resolution_sla_passes(case):
    acknowledge_case(case=case, actor=Actor(), now=case.opened_at + timedelta(minutes=5))
    assert escalate_overdue(now=case.ack_due_at + timedelta(minutes=1)) == 0
    assert escalate_overdue(now=case.due_at + timedelta(minutes=1)) == 1
    case.refresh_from_db()
    assert case.events.get(type="escalated").data["reason"] == "resolution overdue"


def test_closed_cases_never_escalate(case):
    from recovery.services import dismiss_case

    dismiss_case(case=case, reason="spam")
    assert escalate_overdue(now=case.due_at + timedelta(days=1)) == 0


def test_the_escalation_email_reaches_the_right_people_outside_quiet_hours(
    case, org, main_st, harbour, owner, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    main_manager = UserFactory.create()
    add_member(organization=org, user=main_manager, role=Role.MANAGER, locations=[main_st])
    other_manager = UserFactory.create()
    add_member(organization=org, user=other_manager, role=Role.MANAGER, locations=[harbour])
    case.playbook.escalate_to = Role.MANAGER
    case.playbook.save()
    escalate_overdue(now=case.ack_due_at + timedelta(minutes=1))

    night = datetime(2026, 11, 15, 23, 30, tzinfo=UTC)  # 23:30 in London
    assert notify_escalations(now=night) == 0 and mail.outbox == []
    morning = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
    assert notify_escalations(now=morning) == 1
    assert notify_escalations(now=morning + timedelta(minutes=1)) == 0  # once
    (message,) = mail.outbox
    assert set(message.to) == {owner.email, main_manager.email}
    assert "Daniel Reyes" in message.subject
    assert "Apologise to Daniel" in message.body


@pytest.mark.parametrize(
    ("hour", "quiet"), [(21, False), (22, True), (2, True), (6, True), (7, False), (12, False)]
)
def test_quiet_hours_wrap_midnight(hour, quiet):
    assert is_quiet_hour(hour, 22, 7) is quiet
    assert is_quiet_hour(hour, 0, 0) is False


def test_a_case_closed_during_quiet_hours_is_never_emailed(case, owner, settings):
    """The escalation waits for the morning; the case is resolved before then."""
    from recovery.services import resolve_case

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    escalate_overdue(now=case.ack_due_at + timedelta(minutes=1))
    night = datetime(2026, 11, 15, 23, 30, tzinfo=UTC)
    assert notify_escalations(now=night) == 0
    resolve_case(case=case, note="Called him, comped the latte", now=night + timedelta(hours=1))
    assert notify_escalations(now=datetime(2026, 11, 16, 8, 0, tzinfo=UTC)) == 0
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("acknowledge", "why"),
    [(False, "nobody acknowledged it in time"),
     (True, "it was acknowledged but not resolved in time")],
)  # fmt: skip
def test_the_escalation_email_says_why_and_links_to_the_case(
    case, owner, settings, acknowledge, why
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "https://comeback.example"
    if acknowledge:
        acknowledge_case(case=case, actor=Actor(), now=case.opened_at + timedelta(minutes=5))
    escalate_overdue(now=case.due_at + timedelta(minutes=1))
    assert notify_escalations(now=datetime(2026, 11, 16, 12, 0, tzinfo=UTC)) == 1
    (message,) = mail.outbox
    assert why in message.body
    assert f"https://comeback.example/recovery/cases/{case.pk}/" in message.body


def test_a_second_bad_experience_email_says_so(case, org, dan, owner, settings):
    from tests.recovery.conftest import log

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    again = log(org, dan, case.opened_at + timedelta(days=1), kind="complaint", experience=-1)
    sweep_recovery(now=again.occurred_at + timedelta(minutes=1))
    assert notify_escalations(now=datetime(2026, 11, 16, 12, 0, tzinfo=UTC)) == 1
    assert "the customer had a second bad experience" in mail.outbox[0].body

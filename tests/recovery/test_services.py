from datetime import timedelta

import pytest

from accounts.errors import ConflictError, InvalidInput, NotFoundError
from cxcore.models import Episode
from recovery.models import CaseStatus, RecoveryCase
from recovery.services import (
    Actor,
    acknowledge_case,
    assign_case,
    dismiss_case,
    resolve_case,
)
from recovery.sweep import sweep_recovery
from tests.factories import UserFactory
from tests.recovery.conftest import forgotten_order, log


@pytest.fixture
def case(org, main_st, playbooks, dan):
    complaint = forgotten_order(org, dan, main_st)
    sweep_recovery(now=complaint.occurred_at + timedelta(hours=3))
    return RecoveryCase.objects.get()


def test_resolving_logs_the_recovery_episode_and_closes_the_case(case, staff, main_st, dan):
    taken = list(case.actions.all()[:2])
    resolve_case(
        case=case,
        note="He was gracious about it",
        action_ids=[a.pk for a in taken],
        actor=Actor(user=staff, location=main_st),
    )
    case.refresh_from_db()
    episode = case.resolution_episode
    assert case.status == CaseStatus.RESOLVED and case.closed_by == staff
    assert (episode.kind, episode.location, episode.author_user) == ("recovery", main_st, staff)
    assert episode.summary == (
        "Apologise to Daniel by name for the order mix-up on Fri 13 Nov; "
        "Comp their usual Almond-milk latte; He was gracious about it"
    )
    assert [a.taken_at is not None for a in case.actions.all()] == [True, True, False]
    dan.refresh_from_db()
    assert dan.last_follow_up_at == episode.occurred_at
    assert not dan.recovery_case_open and dan.recovery_due_at is None
    assert dan.recovery_resolved_at is not None
    assert "resolved" in set(case.events.values_list("type", flat=True))


def test_a_closed_case_cannot_be_resolved_again(case):
    resolve_case(case=case)
    with pytest.raises(ConflictError):
        resolve_case(case=case)
    with pytest.raises(ConflictError):
        dismiss_case(case=case, reason="late")
    assert Episode.objects.filter(kind="recovery").count() == 1


def test_an_unknown_action_is_refused_and_changes_nothing(case):
    with pytest.raises(InvalidInput) as exc:
        resolve_case(case=case, action_ids=[999_999])
    assert exc.value.field == "actions"
    case.refresh_from_db()
    assert case.is_open and not Episode.objects.filter(kind="recovery").exists()


def test_dismissing_needs_a_reason_and_leaves_that_experience_handled(org, case, dan):
    with pytest.raises(InvalidInput):
        dismiss_case(case=case, reason="  ")
    dismiss_case(case=case, reason="Customer asked us not to contact him")
    case.refresh_from_db()
    assert case.status == "dismissed" and case.dismiss_reason.startswith("Customer asked")
    dan.refresh_from_db()
    assert dan.recovery_due_at is None  # the same complaint does not open a new case
    assert sweep_recovery(now=case.dismissed_at + timedelta(days=1)).opened == 0
    later = log(org, dan, case.dismissed_at + timedelta(days=60), kind="complaint", experience=-1)
    dan.refresh_from_db()
    assert dan.recovery_due_at == later.occurred_at + org.recovery_grace_period


def test_acknowledging_moves_the_escalation_clock_to_the_resolution_sla(case, manager):
    assert case.escalate_at == case.ack_due_at
    acknowledge_case(case=case, actor=Actor(user=manager))
    case.refresh_from_db()
    assert case.acknowledged_by == manager and case.escalate_at == case.due_at


def test_cases_are_assigned_only_to_members_of_the_organization(case, manager, outsider):
    assign_case(case=case, assignee=manager)
    case.refresh_from_db()
    assert case.assignee == manager
    with pytest.raises(NotFoundError):
        assign_case(case=case, assignee=outsider)
    with pytest.raises(NotFoundError):
        assign_case(case=case, assignee=UserFactory.create())


def test_an_unknown_playbook_field_is_refused_naming_it(org):
    from accounts.errors import InvalidInput
    from recovery.services import create_playbook

    with pytest.raises(InvalidInput) as refused:
        create_playbook(organization=org, name="Wobbly tables", wobble=True)
    assert refused.value.field == "wobble"

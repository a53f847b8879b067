"""Saving case history costs a fixed handful of queries however many cases it covers, and no
savepoint: it always runs inside the caller's transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction

from cxcore.services import EpisodeInput, record_episode
from recovery.events import case_event, save_case_events
from recovery.models import CaseEventType, RecoveryCase
from recovery.selectors import newest_triggers
from recovery.services import create_default_playbooks
from recovery.sweep import sweep_recovery
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def cases(org, main_st):
    create_default_playbooks(organization=org)
    last = None
    for n in range(4):
        customer = CustomerFactory.create(organization=org, name=f"Guest {n}")
        for hours in (2, 1):  # two triggers each: the newest is the headline's
            last = record_episode(
                organization=org,
                data=EpisodeInput(
                    kind="complaint",
                    customer_id=customer.pk,
                    summary=f"Cold coffee, {hours}h ago",
                    touchpoints=[{"code": "order_accuracy", "third_party": False}],
                    experience=-2,
                    location=main_st,
                ),
            ).episode
    assert last is not None
    sweep_recovery(now=last.occurred_at + timedelta(hours=3))
    found = list(RecoveryCase.objects.order_by("pk"))
    assert len(found) == 4
    return found


def test_newest_triggers_reads_each_cases_newest_in_one_query(cases, django_assert_num_queries):
    with django_assert_num_queries(1):
        newest = newest_triggers(case.pk for case in cases)
    assert set(newest) == {case.pk for case in cases}
    for case in cases:
        latest = case.triggers.order_by("-occurred_at", "-pk").first()
        assert newest[case.pk].pk == latest.pk
    with django_assert_num_queries(0):
        assert newest_triggers([]) == {}


def test_saving_case_events_costs_the_same_for_one_case_or_many_and_no_savepoint(
    cases, django_assert_num_queries
):
    now = cases[0].opened_at + timedelta(hours=1)

    def save(some):
        # The test runs in a transaction, as every caller does: a savepoint would show here.
        assert transaction.get_connection().in_atomic_block
        save_case_events([case_event(c, CaseEventType.SHOWN, at=now) for c in some], now=now)

    # The history's insert, customers, newest triggers, locations, endpoints, the transaction
    # id and the log's insert (no deliveries without endpoints).
    with django_assert_num_queries(7) as one:
        save(cases[:1])
    with django_assert_num_queries(7):
        save(cases)
    assert not [q for q in one.captured_queries if "SAVEPOINT" in q["sql"]]

"""`make faults`, briefly: writes through the real HTTP API while gunicorn workers are killed and
the database drops the stack's connections; nothing acknowledged is lost, nothing is stored
twice, no 500, and the real worker and beat open exactly the cases the SQL oracle expects.

The oracle and the ledger are checked first on their own, so a green fault run means something.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from cxcore.models import Episode
from cxcore.services import EpisodeInput, record_episodes_bulk
from faults import oracle
from faults.load import OPEN_CASE_STORIES, Write, count_ledger, plan_writes
from faults.run import Result, run_scenario, table
from faults.scenarios import SHORT
from faults.stack import Stack
from recovery.sweep import sweep_recovery


def as_input(write: Write) -> EpisodeInput:
    body = write.body
    return EpisodeInput(
        kind=body["kind"],
        identifiers=body["customer"],
        occurred_at=datetime.fromisoformat(body["occurred_at"]),
        experience=body.get("experience"),
        summary=body["summary"],
        external_id=body.get("external_id", ""),
    )


@pytest.mark.django_db
def test_the_oracle_expects_a_case_for_each_unfollowed_negative_past_the_grace_period(org):
    writes = plan_writes(customers=25, start=timezone.now(), rng=random.Random(1))
    record_episodes_bulk(organization=org, items=[as_input(w) for w in writes])
    by_card = oracle.customers_by_card(org.pk)
    stories = {by_card[w.card] for w in writes if w.story in OPEN_CASE_STORIES}

    expected = oracle.expected_open_cases(org.pk, now=timezone.now())
    assert expected == stories and len(expected) == 10  # complained and soured, 5 each
    # The sweep agrees with it (and the oracle is not simply what the sweep did).
    assert oracle.open_cases(org.pk) == []
    sweep_recovery()
    assert sorted(oracle.open_cases(org.pk)) == sorted(expected)


@pytest.mark.django_db
def test_the_oracle_finds_every_ledger_row_by_its_key(org):
    writes = plan_writes(customers=5, start=timezone.now(), rng=random.Random(2))
    record_episodes_bulk(organization=org, items=[as_input(w) for w in [*writes, writes[0]]])
    rows = oracle.stored_by_key(org.pk)
    assert {w.key for w in writes} == set(rows)
    # Sent twice without a guard (no external id on it): two rows, which is a duplicate.
    assert len(rows[writes[0].key]) == (1 if writes[0].body.get("external_id") else 2)
    assert sorted(i for ids in rows.values() for i in ids) == sorted(
        Episode.objects.filter(organization=org).values_list("pk", flat=True)
    )


def test_the_ledger_counts_503s_apart_from_other_5xx_and_refusals():
    def write(*attempts: str, status: int, acknowledged: bool, replayed: bool = False) -> Write:
        return Write(
            key="k", card="c", story="s", body={}, attempts=list(attempts),
            seconds=[0.1] * len(attempts), status=status, acknowledged=acknowledged,
            replayed=replayed,
        )  # fmt: skip

    counts = count_ledger(
        [
            write("ConnectionError", "503-db", "201", status=201, acknowledged=True, replayed=True),
            write("502", "ReadTimeout", "200", status=200, acknowledged=True),
            write("422", status=422, acknowledged=False),
            Write(key="n", card="c", story="s", body={}),
        ]
    )
    assert (counts.sent, counts.acknowledged, counts.attempts) == (3, 2, 7)
    assert (counts.db_503, counts.other_5xx, counts.connection_errors) == (1, 1, 2)
    assert dict(counts.refused) == {"422": 1}
    assert counts.replayed == 1


@pytest.mark.parametrize(
    "fault",
    [
        {"lost": 1},
        {"duplicated": 1},
        {"other_5xx": 1},
        {"cases_differ": 1},
        {"drifted": 1},
        {"misnamed": 1},
        {"stray": 1},
        {"acknowledged": 9},
        {"oracle_disagrees": True},
    ],
)
def test_a_run_fails_on_any_loss_duplicate_500_or_wrong_case(fault: dict[str, Any]):
    fine: dict[str, Any] = {"scenario": "x", "sent": 10, "acknowledged": 10}
    fine |= {"db_503": 3, "connection_errors": 2}
    assert Result(**fine).ok  # 503s and connection errors are expected under faults
    assert not Result(**(fine | fault)).ok


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_killed_web_workers_and_terminated_backends_lose_and_duplicate_nothing(tmp_path):
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    stack = Stack(work=tmp_path, database_url=url)
    with stack:
        results = [run_scenario(stack, name, seconds=6, rate=15) for name in SHORT]
    assert not stack.leftovers()
    for result in results:
        print(table(result))
        assert result.sent > 50 and result.acknowledged == result.sent, table(result)
        assert (result.lost, result.duplicated, result.stray) == (0, 0, 0), table(result)
        assert result.other_5xx == 0 and not result.refused, table(result)
        assert result.cases_expected > 0, table(result)
        assert result.cases_found == result.cases_expected and not result.cases_differ
        assert result.ok, table(result)

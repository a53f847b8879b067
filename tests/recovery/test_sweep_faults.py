"""Faults in a sweep: a transient database error (a lost connection, a deadlock, a
serialization failure) is retried at once and otherwise left to the next run; only a customer
whose own data fails is put back an hour. The errors are real PostgreSQL errors, raised by the
database on the sweep's own connection."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from cxcore.models import Customer
from cxcore.services import EpisodeInput, record_episodes_bulk
from recovery import sweep
from recovery.models import RecoveryCase
from recovery.sweep import RETRY_LATER, sweep_recovery

pytestmark = pytest.mark.django_db(transaction=True)

LOST_CONNECTION = "SELECT pg_terminate_backend(pg_backend_pid())"
DEADLOCK = "DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = '40P01'; END $$"
SERIALIZATION = "DO $$ BEGIN RAISE EXCEPTION 'serialize' USING ERRCODE = '40001'; END $$"


def due_customers(org, count: int) -> list[int]:
    at = timezone.now() - timedelta(hours=3)
    record_episodes_bulk(
        organization=org,
        items=[
            EpisodeInput(kind="complaint", identifiers={"card": f"F{n}"}, experience=-1,
                         occurred_at=at)
            for n in range(count)
        ],
    )  # fmt: skip
    return list(Customer.objects.order_by("pk").values_list("pk", flat=True))


@pytest.fixture
def failing_batches(monkeypatch):
    """Make the next `times` recovery batches fail with `sql` run by the database itself."""

    real = sweep._recovery_batch
    calls: list[int] = []  # the size of each batch the sweep ran

    def arm(sql: str, times: int):
        left = {"n": times}

        def batch(customer_ids, now):
            calls.append(len(customer_ids))
            if left["n"] > 0:
                left["n"] -= 1
                with connection.cursor() as cursor:
                    cursor.execute(sql)
            return real(customer_ids, now)

        monkeypatch.setattr(sweep, "_recovery_batch", batch)
        return calls

    return arm


@pytest.mark.parametrize("fault", [LOST_CONNECTION, DEADLOCK, SERIALIZATION])
def test_a_transient_error_is_retried_at_once(org, failing_batches, fault):
    due_customers(org, 30)
    calls = failing_batches(fault, times=1)
    result = sweep_recovery(batch_size=100)
    assert result.opened == 30 and result.failed == 0
    assert calls == [30, 30]  # the batch again, not thirty transactions one by one
    assert RecoveryCase.objects.count() == 30
    assert not Customer.objects.filter(recovery_due_at__isnull=False).exists()


def test_a_database_that_keeps_failing_leaves_everything_to_the_next_run(org, failing_batches):
    ids = due_customers(org, 30)
    due_before = dict(Customer.objects.values_list("pk", "recovery_due_at"))
    failing_batches(LOST_CONNECTION, times=100)
    result = sweep_recovery(batch_size=10)
    assert result.opened == 0 and result.failed == 0
    # Nobody was pushed an hour out: every due time is as it was.
    assert dict(Customer.objects.values_list("pk", "recovery_due_at")) == due_before
    failing_batches(LOST_CONNECTION, times=0)
    assert sweep_recovery(batch_size=10).opened == len(ids)


def test_only_a_customer_whose_own_data_fails_is_put_back_an_hour(org, monkeypatch):
    ids = due_customers(org, 12)
    broken = ids[5]
    real = sweep._recovery_batch

    def batch(customer_ids, now):
        if broken in customer_ids:
            raise ValueError("this customer's data cannot be handled")
        return real(customer_ids, now)

    monkeypatch.setattr(sweep, "_recovery_batch", batch)
    now = timezone.now()
    result = sweep_recovery(now=now, batch_size=100)
    assert (result.opened, result.failed) == (11, 1)
    assert Customer.objects.get(pk=broken).recovery_due_at == now + RETRY_LATER
    assert not RecoveryCase.objects.filter(customer_id=broken).exists()


def test_a_lost_connection_while_retrying_one_by_one_pushes_nobody_out(org, monkeypatch):
    """A batch fails on data, and during the one-by-one retry the database goes away: the
    customers not yet handled keep their due time for the next run."""
    ids = due_customers(org, 6)
    real = sweep._recovery_batch
    calls = {"n": 0}

    def batch(customer_ids, now):
        calls["n"] += 1
        if len(customer_ids) > 1:
            raise ValueError("one of them is broken")
        if calls["n"] == 3:  # the second customer on its own: the connection drops
            with connection.cursor() as cursor:
                cursor.execute(LOST_CONNECTION)
        return real(customer_ids, now)

    monkeypatch.setattr(sweep, "_recovery_batch", batch)
    result = sweep_recovery(batch_size=100)
    assert result.failed == 0
    pushed = Customer.objects.filter(recovery_due_at__gt=timezone.now() + timedelta(minutes=30))
    assert not pushed.exists()
    monkeypatch.setattr(sweep, "_recovery_batch", real)
    sweep_recovery(batch_size=100)
    assert RecoveryCase.objects.count() == len(ids)

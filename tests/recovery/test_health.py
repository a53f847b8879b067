"""/readyz tells whether the engine works: database, broker, the sweeps' last runs, and the
customers nobody swept in time. /healthz stays the cheap liveness probe."""

import socket
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from cxcore.models import Customer
from recovery.models import SweepRun
from recovery.sweep import sweep_care, sweep_recovery
from tests.recovery.conftest import log


@pytest.fixture
def swept(db):
    sweep_recovery()
    sweep_care()


def test_ready_after_both_sweeps_ran_with_nothing_overdue(client, swept):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    checks = response.json()["checks"]
    assert {name for name, check in checks.items() if check["ok"]} == {
        "database", "broker", "recovery_sweep", "care_sweep", "overdue_customers"
    }  # fmt: skip
    assert checks["recovery_sweep"]["age_seconds"] <= 5
    assert response["Cache-Control"].startswith("max-age=0")


def test_not_ready_before_any_sweep_or_when_the_last_one_is_stale(client, db, settings):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["recovery_sweep"]["error"] == "has not run yet"
    sweep_recovery()
    sweep_care()
    SweepRun.objects.filter(name="care").update(
        finished_at=timezone.now() - settings.READY_SWEEP_MAX_AGE - timedelta(seconds=1)
    )
    checks = client.get("/readyz").json()["checks"]
    assert checks["recovery_sweep"]["ok"] and not checks["care_sweep"]["ok"]


def test_customers_due_long_ago_and_not_swept_make_it_fail(client, org, settings, swept):
    """The worker or beat stopped: the sweeps' rows say they ran, but customers pile up."""
    customer = Customer.objects.create(organization=org, name="Waiting Walt")
    log(org, customer, timezone.now() - timedelta(days=1), kind="complaint", experience=-2)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["overdue_customers"]["recovery"] == 1
    sweep_recovery()
    assert client.get("/readyz").status_code == 200


def test_a_broker_that_does_not_answer_makes_it_fail(client, swept):
    from cxcore import celery_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    original = celery_app.conf.broker_write_url
    celery_app.conf.broker_write_url = f"redis://127.0.0.1:{dead}/0"
    celery_app._pool = None
    try:
        response = client.get("/readyz")
    finally:
        celery_app.conf.broker_write_url = original
        celery_app._pool = None
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False


def test_the_command_exits_non_zero_when_not_ready(db, capsys):
    with pytest.raises(CommandError):
        call_command("readyz")
    sweep_recovery()
    sweep_care()
    call_command("readyz")
    assert '"status": "ok"' in capsys.readouterr().out


def test_a_sweep_cut_short_by_the_database_records_no_run(db, monkeypatch):
    from django.db import OperationalError

    from recovery import sweep

    monkeypatch.setattr(
        sweep, "_locked_batch", lambda *a: (_ for _ in ()).throw(OperationalError("gone"))
    )
    monkeypatch.setattr(sweep, "_reconnect", lambda: None)
    sweep_recovery()
    assert not SweepRun.objects.filter(name="recovery").exists()

"""Readiness: is the whole engine working, not only the web process?

`/healthz` is the cheap liveness probe (answered by middleware). `/readyz` and
`manage.py readyz` report the database, the broker, how long ago each sweep last ran to its
end and how many customers are overdue: due longer ago than a sweep may take to reach them.
A stopped worker or beat shows here as a stale sweep and a growing overdue count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection

from cxcore.models import Customer
from recovery.models import SweepRun

# Counting overdue customers stops here: enough to say "many", cheap at any scale.
OVERDUE_COUNT_CAP = 1000


@dataclass
class Readiness:
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check["ok"] for check in self.checks.values())

    def as_json(self) -> dict[str, Any]:
        return {"status": "ok" if self.ok else "failing", "checks": self.checks}


def readiness(*, now: datetime, max_age: timedelta | None = None) -> Readiness:
    """Each check says ok or why not. `max_age`: how stale a sweep may be (default: five sweep
    intervals, READY_SWEEP_MAX_AGE_SECONDS)."""
    max_age = max_age or settings.READY_SWEEP_MAX_AGE
    report = Readiness()
    report.checks["database"] = _database()
    report.checks["broker"] = _broker()
    if report.checks["database"]["ok"]:
        runs = dict(SweepRun.objects.values_list("name", "finished_at"))
        for name in ("recovery", "care"):
            finished = runs.get(name)
            age = (now - finished).total_seconds() if finished else None
            report.checks[f"{name}_sweep"] = {
                "ok": age is not None and age <= max_age.total_seconds(),
                "finished_at": finished.isoformat() if finished else None,
                "age_seconds": round(age) if age is not None else None,
                **({} if finished else {"error": "has not run yet"}),
            }
        cutoff = now - max_age
        # Served by the partial index on each due time; capped, so a backlog costs no more.
        overdue = {
            due: Customer.objects.filter(**{f"{due}__lt": cutoff})
            .values("pk")[:OVERDUE_COUNT_CAP]
            .count()
            for due in ("recovery_due_at", "care_due_at")
        }
        report.checks["overdue_customers"] = {
            "ok": sum(overdue.values()) <= settings.READY_MAX_OVERDUE,
            "recovery": overdue["recovery_due_at"],
            "care": overdue["care_due_at"],
            "capped_at": OVERDUE_COUNT_CAP,
        }
    return report


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


def _broker() -> dict[str, Any]:
    from cxcore.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=settings.READY_BROKER_TIMEOUT)
    except Exception as exc:  # kombu raises its transports' own errors
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}

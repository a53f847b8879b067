"""Measure the recovery sweep at scale: N customers, D of them due, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/comeback_bench \\
        .venv/bin/python -m bench.sweep_scale --customers 1000000 --due 10000

Generates the data set straight in SQL (set-based, not the ORM row by row) unless it is
already there, then times: the sweep with D customers due, the sweep with none due, and the
same cases opened by one hand-written set-based INSERT … SELECT (the floor).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxcore.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import Organization  # noqa: E402
from accounts.services import create_organization  # noqa: E402
from recovery.models import RecoveryCase  # noqa: E402
from recovery.sweep import sweep_recovery  # noqa: E402

SLUG = "bench-sweep"


def generate(customers: int) -> Organization:
    org = Organization.objects.filter(slug=SLUG).first()
    if org is not None and org.customers.count() == customers:
        return org
    if org is not None:
        org.delete()
    org = create_organization(name="Bench Sweep", location_names=["Main"], time_zone="UTC")
    Organization.objects.filter(pk=org.pk).update(slug=SLUG)
    org.refresh_from_db()
    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO cxcore_customer (organization_id, name, notes, created_at, updated_at,
                first_seen_at, first_visit_at, last_visit_at, visit_count, episode_count,
                total_spend, usual_order, recovery_case_open, care_case_open)
            SELECT %s, 'Customer ' || g, '', now(), now(),
                now() - interval '300 days', now() - interval '300 days',
                now() - (g %% 20) * interval '1 day', 1 + g %% 4, 1 + g %% 4, 0, '', false, false
            FROM generate_series(1, %s) g
            """,
            [org.pk, customers],
        )
    print(f"generated {customers} customers in {time.perf_counter() - started:.1f}s")
    return org


def make_due(org: Organization, due: int) -> None:
    """Give `due` customers, spread over the table, an unfollowed complaint past its grace."""
    with connection.cursor() as cur:
        for table in ("recovery_caseevent", "recovery_casetrigger", "recovery_caseaction"):
            cur.execute(
                f"DELETE FROM {table} WHERE case_id IN "
                "(SELECT id FROM recovery_recoverycase WHERE organization_id = %s)",
                [org.pk],
            )
        cur.execute("DELETE FROM recovery_recoverycase WHERE organization_id = %s", [org.pk])
        cur.execute("DELETE FROM cxcore_episode WHERE organization_id = %s", [org.pk])
        cur.execute(
            """UPDATE cxcore_customer SET recovery_due_at = NULL, recovery_case_open = false,
               recovery_handled_until = NULL, last_experience = NULL, last_negative_at = NULL
               WHERE organization_id = %s
               AND (recovery_due_at IS NOT NULL OR recovery_case_open)""",
            [org.pk],
        )
        cur.execute(
            """
            WITH picked AS (
                SELECT id FROM cxcore_customer WHERE organization_id = %s
                ORDER BY id LIMIT %s OFFSET 0
            ), spread AS (
                SELECT c.id FROM cxcore_customer c WHERE c.organization_id = %s
                AND c.id %% (SELECT greatest(1, count(*) / %s) FROM cxcore_customer
                             WHERE organization_id = %s) = 0
                LIMIT %s
            ), ins AS (
                INSERT INTO cxcore_episode (organization_id, customer_id, kind, occurred_at,
                    recorded_at, source, external_id, summary, touchpoints, items, experience,
                    experience_source, rating_scale)
                SELECT %s, id, 'complaint', now() - interval '3 hours', now(), 'api', '',
                    'Cold coffee and a long wait', '[{"code": "wait", "third_party": false}]',
                    '[]', -1, 'explicit', ''
                FROM spread RETURNING customer_id, occurred_at
            )
            UPDATE cxcore_customer c SET last_experience = -1, last_experience_at = ins.occurred_at,
                last_negative_at = ins.occurred_at,
                recovery_due_at = ins.occurred_at + interval '2 hours'
            FROM ins WHERE c.id = ins.customer_id
            """,
            [org.pk, due, org.pk, due, org.pk, due, org.pk],
        )
    connection.commit() if not connection.get_autocommit() else None


def floor_insert(org: Organization) -> float:
    """The same cases written by one hand-written set-based statement, rolled back."""
    with connection.cursor() as cur:
        cur.execute("BEGIN")
        started = time.perf_counter()
        cur.execute(
            """
            INSERT INTO recovery_recoverycase (organization_id, customer_id, kind, status,
                severity, touchpoints, show_at_visit, opened_at, ack_due_at, due_at, escalate_at,
                dismiss_reason, outcome, outcome_due_at)
            SELECT organization_id, id, 'recovery', 'open', 2, '[]', true, now(),
                now() + interval '4 hours', now() + interval '2 days', now() + interval '4 hours',
                '', '', now() + interval '30 days'
            FROM cxcore_customer WHERE recovery_due_at <= now()
            """
        )
        cur.execute(
            "UPDATE cxcore_customer SET recovery_due_at = NULL WHERE recovery_due_at <= now()"
        )
        elapsed = time.perf_counter() - started
        cur.execute("ROLLBACK")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=10_000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    org = generate(args.customers)
    make_due(org, args.due)
    with connection.cursor() as cur:
        cur.execute("ANALYZE cxcore_customer; ANALYZE cxcore_episode")
    floor = floor_insert(org)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = sweep_recovery(now=timezone.now())
    elapsed = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    opened = RecoveryCase.objects.filter(organization=org).count()
    started = time.perf_counter()
    idle = sweep_recovery(now=timezone.now() + timedelta(seconds=1))
    idle_elapsed = time.perf_counter() - started
    figures = {
        "customers": args.customers,
        "due": args.due,
        "opened": result.opened,
        "cases_in_db": opened,
        "sweep_seconds": round(elapsed, 3),
        "cases_per_second": round(result.opened / elapsed),
        "floor_seconds": round(floor, 3),
        "ratio_to_floor": round(elapsed / floor, 1),
        "none_due_ms": round(idle_elapsed * 1000, 2),
        "none_due_looked_at": idle.looked_at,
        "peak_rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

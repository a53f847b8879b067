"""Measure the owner queue at scale: N open cases, the first page and a deep keyset page,
through the API and the HTML page (in-process, Django's test client), beside the raw keyset
SQL (the floor).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/comeback_bench \\
        .venv/bin/python -m bench.queue_scale --cases 100000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxcore.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from accounts.models import Organization, Role, User  # noqa: E402
from accounts.services import add_member, create_api_key, create_organization  # noqa: E402
from cxcore.api.pagination import encode_cursor  # noqa: E402
from recovery.models import RecoveryCase  # noqa: E402

SLUG = "bench-queue"


def generate(cases: int) -> Organization:
    org = Organization.objects.filter(slug=SLUG).first()
    if org is not None and RecoveryCase.objects.filter(organization=org).count() == cases:
        return org
    if org is not None:
        with connection.cursor() as cur:
            cur.execute("DELETE FROM recovery_recoverycase WHERE organization_id = %s", [org.pk])
            cur.execute("DELETE FROM cxcore_customer WHERE organization_id = %s", [org.pk])
        org.delete()
    org = create_organization(name="Bench Queue", location_names=["Main", "Harbour"])
    Organization.objects.filter(pk=org.pk).update(slug=SLUG)
    org.refresh_from_db()
    with connection.cursor() as cur:
        cur.execute(
            """
            WITH c AS (
                INSERT INTO cxcore_customer (organization_id, name, notes, created_at, updated_at,
                    visit_count, episode_count, total_spend, usual_order, recovery_case_open,
                    care_case_open)
                SELECT %s, 'Guest ' || g, '', now(), now(), 1, 1, 0, '', true, false
                FROM generate_series(1, %s) g RETURNING id
            )
            INSERT INTO recovery_recoverycase (organization_id, customer_id, kind, status,
                severity, touchpoints, show_at_visit, opened_at, ack_due_at, due_at,
                dismiss_reason, outcome, location_id)
            SELECT %s, id, 'recovery', 'open', 1 + id %% 4, '["wait"]', true,
                now() - (id %% 10000) * interval '1 minute', now(), now() + interval '1 day', '',
                '', (SELECT min(id) FROM accounts_location WHERE organization_id = %s)
            FROM c
            """,
            [org.pk, cases, org.pk, org.pk],
        )
        cur.execute("ANALYZE recovery_recoverycase")
    return org


def timed(fn, runs: int) -> dict:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    org = generate(args.cases)
    setup_test_environment()
    owner, _ = User.objects.get_or_create(email="bench-owner@example.com")
    add_member(organization=org, user=owner, role=Role.OWNER)
    _, key = create_api_key(organization=org, name="bench")
    api, web = Client(HTTP_AUTHORIZATION=f"Api-Key {key}"), Client()
    web.force_login(owner)
    deep = (
        RecoveryCase.objects.filter(organization=org, status="open")
        .order_by("-severity", "opened_at", "id")
        .values_list("severity", "opened_at", "id")[args.cases - 100]
    )
    cursor = encode_cursor(*deep)

    def floor(after=None):
        with connection.cursor() as cur:
            if after is None:
                cur.execute(
                    "SELECT id FROM recovery_recoverycase WHERE organization_id = %s AND "
                    "status = 'open' ORDER BY severity DESC, opened_at, id LIMIT 50",
                    [org.pk],
                )
            else:
                cur.execute(
                    "SELECT id FROM recovery_recoverycase WHERE organization_id = %s AND "
                    "status = 'open' AND (severity < %s OR (severity = %s AND (opened_at, id) "
                    "> (%s, %s))) ORDER BY severity DESC, opened_at, id LIMIT 50",
                    [org.pk, after[0], after[0], after[1], after[2]],
                )
            cur.fetchall()

    def ok(response):
        assert response.status_code == 200, response.status_code

    figures = {
        "open_cases": args.cases,
        "floor_first": timed(floor, args.runs),
        "floor_deep": timed(lambda: floor(deep), args.runs),
        "api_first": timed(lambda: ok(api.get("/api/v1/cases/", {"page_size": 50})), args.runs),
        "api_deep": timed(
            lambda: ok(api.get("/api/v1/cases/", {"page_size": 50, "cursor": cursor})), args.runs
        ),
        "html_first": timed(lambda: ok(web.get("/recovery/")), args.runs),
        "html_deep": timed(lambda: ok(web.get("/recovery/", {"after": cursor})), args.runs),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

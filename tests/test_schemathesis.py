"""The schema is the truth: schemathesis runs every operation of the live schema against a real
server, as an organization-wide API key, a key limited to one location and a staff member's
session, with every check it runs by default, and finds nothing.

The server is gunicorn with the production settings (DEBUG off) on the test database, started in
its own process group and stopped with it. Each actor is one `schemathesis run` (the CLI, as a
developer would type it: the command is in the failure message), all default phases (examples,
coverage, fuzzing, stateful) with a fixed seed; what the schema cannot say about valid input is
in tests/schemathesis_hooks.py. Operations are read from the schema when the test runs, so an
endpoint added later is covered without a change here. Any finding fails the test: there is no
baseline of accepted ones.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.middleware.csrf import CSRF_ALLOWED_CHARS
from django.test import Client
from django.utils import timezone

from accounts.models import Location, Organization, User
from cxcore.services import EpisodeInput, record_episode
from recovery.services import create_default_playbooks
from recovery.sweep import sweep_recovery
from tests.factories import CustomerFactory
from tests.processes import start_group, stop_group

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Cases per operation in the fuzzing phase; the coverage phase adds its own on top.
EXAMPLES = 50
SEED = 20261201
ACTORS = ("org_key", "location_key", "staff_session")
# A DELETE whose one input is the id: fed ids read back from earlier responses, schemathesis
# draws from that pool alone, deletes them, and its fuzzing ends at the pool's size (~12).
# For these, fuzzing draws ids from the schema instead (the coverage phase still tries real
# ones), so they get their 50 cases like every other operation.
PATH_ONLY_DELETES = ("DELETE /api/v1/webhooks/{id}/",)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url() -> str:
    """The test database, as the server process is to reach it."""
    db = connection.settings_dict
    user = db["USER"] or "postgres"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    host = db["HOST"] or "127.0.0.1"
    port = db["PORT"] or "5432"
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


@pytest.fixture(scope="module")
def server(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """gunicorn on the test database with the production settings, for the module's tests."""
    tmp = tmp_path_factory.mktemp("schemathesis-server")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DEBUG": "false",
        # The test process's key, so the sessions it signs in are the server's too.
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        # Thousands of requests a minute per key; the quotas are test_api_throttling.py's.
        "API_THROTTLE_RATE": "1000000/min",
        "API_BULK_THROTTLE_RATE": "1000000/min",
        "CACHE_URL": "locmem://schemathesis",
        # Tasks the writes enqueue (webhook deliveries) stay in the server's memory: no worker
        # runs here, and nothing is left on a shared broker for another test's worker.
        "CELERY_BROKER_URL": "memory://",
        "COMEBACK_VAR_DIR": str(tmp / "var"),
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp / "gunicorn.log"
    with log.open("wb") as out:
        process = start_group(
            [str(BIN / "gunicorn"), "cxcore.wsgi", "-b", f"127.0.0.1:{port}", "-w", "3"],
            cwd=BASE_DIR,  # and so gunicorn.conf.py
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not start:\n{log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.25)
        yield base
    finally:
        stop_group(process)


def seed_data(org: Organization, locations: list[Location]) -> dict[str, Any]:
    """A few customers with narratives, and open cases at both locations, so the ids the
    operations take exist (schemathesis also learns ids from the lists it reads)."""
    create_default_playbooks(organization=org)
    now = timezone.now()
    customers = []
    for index, name in enumerate(("Margaret Lee", "Daniel Reyes", "Ana Silva", "Tom Okafor")):
        customer = CustomerFactory.create(organization=org, name=name)
        location = locations[index % len(locations)]
        for days in (30, 20, 10):
            record_episode(
                organization=org,
                data=EpisodeInput(
                    customer_id=customer.pk,
                    kind="order",
                    occurred_at=now - timedelta(days=days),
                    location=location,
                    items=[{"name": "Flat white", "quantity": 1, "price": "3.40"}],
                ),
                now=now - timedelta(days=days),
            )
        if index < 3:  # three bad experiences, past the grace period: three open cases
            record_episode(
                organization=org,
                data=EpisodeInput(
                    customer_id=customer.pk,
                    kind="complaint",
                    occurred_at=now - timedelta(days=2),
                    location=location,
                    summary="Waited 40 minutes for a cold coffee.",
                    touchpoints=[{"code": "wait", "third_party": False}],
                    experience=-2,
                ),
                now=now - timedelta(days=2),
            )
        customers.append(customer)
    sweep_recovery(now=now)
    return {
        "locations": [location.slug for location in locations],
        "customers": [customer.pk for customer in customers],
    }


def actor_seed(seed: dict[str, Any], usable: list[Location], path: Path) -> Path:
    """The seed as one actor's hooks see it: the locations it may use (the case list refuses
    another with a 400), every customer (any till may look anyone up)."""
    path.write_text(json.dumps({**seed, "locations": [location.slug for location in usable]}))
    return path


def session_headers(user: User) -> list[str]:
    """A signed-in session's cookie, with the CSRF token DRF's SessionAuthentication asks of
    unsafe methods (the cookie's secret, echoed in X-CSRFToken)."""
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    token = "".join(secrets.choice(CSRF_ALLOWED_CHARS) for _ in range(32))
    cookie = f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={token}"
    return [f"Cookie: {cookie}", f"X-CSRFToken: {token}"]


def schemathesis_command(
    base: str, headers: list[str], reports: Path, *, session: bool = False
) -> list[str]:
    config = reports / "schemathesis.toml"
    config.write_text(
        "".join(
            f'[[operations]]\ninclude-name = "{label}"\n'
            "phases.fuzzing.extra-data-sources.responses = false\n\n"
            for label in PATH_ONLY_DELETES
        )
    )
    command = [
        str(BIN / "schemathesis"),
        f"--config-file={config}",
        "run",
        f"{base}/api/v1/schema/?format=json",
        f"--max-examples={EXAMPLES}",
        f"--seed={SEED}",
        # One worker: hypothesis reads lambdas' source to describe them, and from several
        # threads that once raised "AST constructor recursion depth mismatch" (CPython 3.11).
        "--workers=1",
        "--generation-database=none",
        "--request-timeout=30",
        "--no-color",
        "--report=json,ndjson",
        f"--report-json-path={reports / 'report.json'}",
        f"--report-ndjson-path={reports / 'events.ndjson'}",
    ]
    if session:
        # A session signs in by its cookie alone; left to itself, schemathesis would add an
        # Authorization header of its own making and call the answer (the session's) a pass
        # for a bad API key. The checks still take the cookie away and expect a 401.
        command.append("--generation-with-security-parameters=false")
    for header in headers:
        command += ["-H", header]
    return command


def cases_by_operation(events: Path) -> Counter[str]:
    """How many cases each operation ran, over every phase but the stateful one (whose
    scenarios chain operations and are counted apart)."""
    counts: Counter[str] = Counter()
    with events.open() as file:
        for line in file:
            event = json.loads(line)
            finished = event.get("ScenarioFinished")
            if finished and finished["phase"] != "stateful":
                recorder = finished["recorder"]
                counts[recorder["label"]] += len(recorder.get("cases", {}))
    return counts


def test_schemathesis_finds_nothing_as_any_actor(
    server: str,
    org: Organization,
    main_st: Location,
    harbour: Location,
    staff: User,
    org_key: str,
    till_key: str,
    tmp_path: Path,
) -> None:
    seed = seed_data(org, [main_st, harbour])
    usable = {"org_key": [main_st, harbour], "location_key": [main_st], "staff_session": [main_st]}
    headers = {
        "org_key": [f"Authorization: Api-Key {org_key}"],
        "location_key": [f"Authorization: Api-Key {till_key}"],
        "staff_session": session_headers(staff),
    }
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
        "PYTHONPATH": str(BASE_DIR),
    }
    runs: dict[str, tuple[subprocess.Popen[bytes], Path, list[str]]] = {}
    started = time.monotonic()
    try:
        # The three at once: they are clients of one server, as tills and an owner are.
        for actor in ACTORS:
            reports = tmp_path / actor
            reports.mkdir()
            command = schemathesis_command(
                server, headers[actor], reports, session=actor == "staff_session"
            )
            seed_path = actor_seed(seed, usable[actor], reports / "seed.json")
            with (reports / "output.txt").open("wb") as out:
                process = start_group(
                    command,
                    cwd=reports,
                    env={**env, "COMEBACK_SCHEMATHESIS_SEED": str(seed_path)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            runs[actor] = (process, reports, command)
        for process, _, _ in runs.values():
            process.wait(timeout=900)
    finally:
        for process, _, _ in runs.values():
            stop_group(process)
    elapsed = time.monotonic() - started

    schema = requests.get(f"{server}/api/v1/schema/?format=json", timeout=30).json()
    takes_input = {
        f"{method.upper()} {path}"
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if operation.get("parameters") or operation.get("requestBody")
    }
    problems = []
    print(f"\nschemathesis {EXAMPLES} examples, seed {SEED}, {elapsed:.0f} s for the three:")
    for actor, (process, reports, command) in runs.items():
        output = (reports / "output.txt").read_text(errors="replace")
        report_path = reports / "report.json"
        if not report_path.exists():
            problems.append(f"{actor}: no report (exit {process.returncode}):\n{output[-6000:]}")
            continue
        report = json.loads(report_path.read_text())
        counts = cases_by_operation(reports / "events.ndjson")
        operations = report["operations"]
        cases = report["test_cases"]
        fewest = min(counts, key=lambda label: counts[label], default="-")
        print(
            f"  {actor}: {operations['tested']}/{operations['total']} operations, "
            f"{cases['generated']} cases, {cases['with_failures']} with failures, "
            f"fewest cases: {fewest} ({counts[fewest]})"
        )
        # Secrets out of the message: the key and the session are the test's own, but still.
        shown = " ".join(shlex.quote(part) for part in command)
        for value in headers[actor]:
            shown = shown.replace(value.split(": ", 1)[1], "<redacted>")
        # Exit 0: no failure and no error.
        if process.returncode != 0 or report["errors"] or operations["errored"]:
            problems.append(
                f"{actor}: exit {process.returncode}, {cases['with_failures']} cases failed, "
                f"{[(f['code'], f['title'], f['operations']) for f in report['failures']]}\n"
                f"{shown}\n{output[-12000:]}"
            )
        if operations["tested"] != operations["total"]:
            problems.append(f"{actor}: {operations['tested']} of {operations['total']} tested")
        # An operation without parameters or body has only so many distinct requests to make.
        few = {label: n for label, n in counts.items() if label in takes_input and n < EXAMPLES}
        if few:
            problems.append(f"{actor}: fewer than {EXAMPLES} cases: {few}")
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)

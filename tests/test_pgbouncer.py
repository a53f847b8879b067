"""PgBouncer (Debian's package) in transaction pooling mode in front of the test cluster: the
API and sweep tests pass through it, so nothing they use relies on session state between
transactions (DATABASE_POOLER=pgbouncer, cxcore.settings).

The run through the pooler is a pytest subprocess on a test database of its own
(test_<name>_pgbouncer), a pool of POOL_SIZE server connections shared by every client. Its
files, ~2.5 minutes on this 2-core machine: THROUGH_THE_POOLER below — the episode API with its
forty concurrent writers and idempotent retries, the API's edges, the cases and sidebar API, the
sweep with its races and its lost connections, and a real Celery worker with beat sweeping.
Left out for time, holding no session state of their own: the bad-input fuzzing
(tests/cxcore/test_api_bad_input.py, ~3.5 minutes alone) and the webhook API.

Imports are not run through it: they keep a TEMP staging table and a session advisory lock
across their chunks' transactions, which behind the pooler stay on a server connection that
the next client gets (shown below); they refuse to start there and run on a worker with a
direct connection (docker-compose.yml's importer).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dj_database_url
import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from imports.models import ImportStatus
from imports.services import create_customer_batch, import_customers
from tests.processes import start_group, stop_group

ROOT = Path(__file__).resolve().parent.parent
PGBOUNCER = "/usr/sbin/pgbouncer"
POOL_SIZE = 4
THROUGH_THE_POOLER = [
    "tests/cxcore/test_api_episodes.py",
    "tests/cxcore/test_api_edges.py",
    "tests/recovery/test_api.py",
    "tests/recovery/test_sweep.py",
    "tests/recovery/test_sweep_faults.py",
    "tests/recovery/test_worker.py::test_beat_and_a_worker_open_the_case_of_a_due_customer",
]
RUN_TIMEOUT = 480
SQUARE = ROOT / "tests" / "imports" / "data" / "square-customers-bom-crlf.csv"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server() -> dict[str, Any]:
    """Where the outer suite's PostgreSQL is (its HOST, PORT, USER, PASSWORD)."""
    return connection.settings_dict


def direct(dbname: str = "postgres") -> psycopg.Connection:
    db = server()
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=dbname,
        autocommit=True,
    )


@dataclass
class Bouncer:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, dbname: str) -> str:
        return f"postgres://{server()['USER']}@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str) -> psycopg.Connection:
        return psycopg.connect(self.url(dbname), autocommit=True, prepare_threshold=None)

    def admin(self, command: str) -> list[dict[str, Any]]:
        """A SHOW command on the admin console (simple query protocol only: a ClientCursor)."""
        with (
            psycopg.connect(
                self.url("pgbouncer"), autocommit=True, cursor_factory=psycopg.ClientCursor
            ) as conn,
            conn.cursor() as cur,
        ):
            cur.execute(command)
            names = [column.name for column in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def row(self, command: str, database: str) -> dict[str, Any]:
        rows = [row for row in self.admin(command) if row["database"] == database]
        assert rows, f"{command}: no row for {database}"
        return rows[0]


@contextmanager
def pgbouncer(tmp_path: Path, *, pool_size: int) -> Iterator[Bouncer]:
    """PgBouncer on a free loopback port in transaction pooling mode, every database of the
    outer suite's server behind it; its own process group, stopped as a group whatever
    happens."""
    db = server()
    port = free_port()
    home = tmp_path / "pgbouncer"
    home.mkdir()
    (home / "userlist.txt").write_text(f'"{db["USER"]}" "{db["PASSWORD"] or ""}"\n')
    (home / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {home / 'userlist.txt'}\nadmin_users = {db['USER']}\n"
        f"pool_mode = transaction\ndefault_pool_size = {pool_size}\nreserve_pool_size = 0\n"
        "max_client_conn = 300\nignore_startup_parameters = extra_float_digits\n"
        # The totals SHOW STATS gives are folded in once a period: each second, not each minute.
        "stats_period = 1\n"
    )
    # PgBouncer will not run as root; it reads its files before it switches to the user.
    as_user = ["-u", "postgres"] if os.geteuid() == 0 else []
    log = home / "pgbouncer.log"
    with log.open("wb") as out:
        process = start_group(
            [PGBOUNCER, *as_user, str(home / "pgbouncer.ini")],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    bouncer = Bouncer(port, process, log)
    try:
        deadline = time.monotonic() + 15
        while not listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"PgBouncer did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
        yield bouncer
    finally:
        stop_group(process)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Peaks:
    """The most connections seen at once on the test database, sampled while the run ran."""

    servers: int = 0  # PostgreSQL's own view: client backends on the database
    clients: int = 0  # PgBouncer's: clients active or waiting on its pool
    samples: int = 0


@contextmanager
def sampled(bouncer: Bouncer, database: str) -> Iterator[Peaks]:
    peaks = Peaks()
    done = threading.Event()

    def sample() -> None:
        with direct() as conn:
            while not done.wait(0.1):
                (servers,) = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = %s AND backend_type = 'client backend'",
                    [database],
                ).fetchone() or (0,)
                pools = [p for p in bouncer.admin("SHOW POOLS") if p["database"] == database]
                clients = sum(p["cl_active"] + p["cl_waiting"] for p in pools)
                peaks.servers = max(peaks.servers, servers)
                peaks.clients = max(peaks.clients, clients)
                peaks.samples += 1

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peaks
    finally:
        done.set()
        thread.join(timeout=10)


def drop_database(name: str) -> None:
    with direct() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
def test_the_api_and_sweep_tests_pass_through_pgbouncer_in_transaction_mode(tmp_path):
    name = f"{dj_database_url.parse(os.environ['DATABASE_URL'])['NAME']}_pgbouncer"
    test_database = f"test_{name}"  # what pytest-django makes of it
    drop_database(test_database)  # a killed run's
    output = tmp_path / "pytest.log"
    try:
        with pgbouncer(tmp_path, pool_size=POOL_SIZE) as bouncer:
            env = os.environ | {
                "DATABASE_URL": bouncer.url(name),
                "DATABASE_POOLER": "pgbouncer",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
            # --reuse-db: pytest-django would drop its database through PgBouncer, which still
            # holds server connections to it; it is dropped here, directly, instead.
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                       "--reuse-db", *THROUGH_THE_POOLER]  # fmt: skip
            with output.open("wb") as out, sampled(bouncer, test_database) as peaks:
                run = start_group(
                    command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )  # fmt: skip
                try:
                    run.wait(timeout=RUN_TIMEOUT)
                except subprocess.TimeoutExpired:
                    pytest.fail(f"The run through PgBouncer took over {RUN_TIMEOUT}s:\n"
                                f"{output.read_text(errors='replace')[-6000:]}")  # fmt: skip
                finally:
                    stop_group(run)
            time.sleep(1.5)  # one stats period, so SHOW STATS has every transaction
            stats = bouncer.row("SHOW STATS", test_database)
            log = output.read_text(errors="replace")
            assert run.returncode == 0, f"The run through PgBouncer failed:\n{log[-8000:]}"
            passed = re.search(r"(\d+) passed", log)
            assert passed and int(passed.group(1)) >= 80, log[-3000:]
            assert "skipped" not in log.splitlines()[-1], log[-3000:]
            # PgBouncer served it: thousands of transactions, on at most POOL_SIZE server
            # connections, shared by more clients than that at once.
            assert stats["total_xact_count"] > 1000, stats
            assert peaks.samples > 100, peaks
            assert 1 <= peaks.servers <= POOL_SIZE, peaks
            assert peaks.clients > POOL_SIZE, peaks
    finally:
        drop_database(test_database)


@pytest.mark.slow
def test_session_state_stays_on_the_server_connection_for_the_next_client(tmp_path):
    """Why imports need a direct connection: behind a transaction pooler, a TEMP table and a
    session advisory lock belong to the server connection, not to the client that made them.
    With one server connection, a second client sees the first's staging table and "holds"
    its lock too, and the first client's unlock may run where the lock is not."""
    with pgbouncer(tmp_path, pool_size=1) as bouncer:
        database = server()["NAME"]
        with bouncer.connect(database) as first, bouncer.connect(database) as second:
            first.execute("CREATE TEMP TABLE import_stage (line integer)")
            first.execute("SELECT pg_advisory_lock(420, 1)")
            assert second.execute("SELECT to_regclass('pg_temp.import_stage')").fetchone() == (
                "import_stage",
            )
            assert second.execute("SELECT pg_try_advisory_lock(420, 1)").fetchone() == (True,)
            (first_pid,) = first.execute("SELECT pg_backend_pid()").fetchone() or (0,)
            (second_pid,) = second.execute("SELECT pg_backend_pid()").fetchone() or (0,)
            assert first_pid == second_pid  # one server session, two clients
            first.execute("SELECT pg_advisory_unlock_all()")
            first.execute("DROP TABLE import_stage")


@pytest.mark.django_db
def test_an_import_refuses_to_start_behind_the_pooler(org, settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = str(tmp_path)
    batch = create_customer_batch(organization=org, path=SQUARE, file_name="c", format="square")
    settings.DATABASE_POOLER = "pgbouncer"
    with pytest.raises(ImproperlyConfigured, match="direct connection"):
        import_customers(batch=batch)
    batch.refresh_from_db()
    assert batch.status == ImportStatus.QUEUED  # left for the import worker


def test_the_pooler_switch_fetches_client_side_and_never_prepares():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_POOLER", "IMPORT_QUEUE")}
    probe = (
        "from django.conf import settings as s; import django; django.setup(); "
        "d = s.DATABASES['default']; "
        "print(d.get('DISABLE_SERVER_SIDE_CURSORS', False), "
        "d.get('OPTIONS', {}).get('prepare_threshold', 5), s.CELERY_TASK_ROUTES)"
    )

    def settings_with(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", probe],
            cwd=ROOT,
            env=env | {"DJANGO_SETTINGS_MODULE": "cxcore.settings", **extra},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    pooled = settings_with(DATABASE_POOLER="pgbouncer")
    assert pooled.stdout.strip() == (
        "True None {'imports.tasks.run_import_batch_task': {'queue': 'imports'}}"
    ), pooled.stderr
    assert settings_with().stdout.strip() == "False 5 {}"
    unknown = settings_with(DATABASE_POOLER="odyssey")
    assert unknown.returncode != 0 and "only pgbouncer is known" in unknown.stderr

"""Read replicas (cxcore.db_router): the router's rules on plain aliases, the settings, and a real
streaming replica on loopback.

The machine's cluster takes no replication connections, so the replica tests make a primary of
their own: initdb on a free port, the test database pytest-django created copied into it
(pg_dump), a base backup of it started as a hot standby on another free port. Both run in
process groups of their own and are stopped as groups, even when a test fails. The replica's
and the primary's own statement logs (log_statement=all) say which server ran a read, beside
the client's view of each connection. Replay is paused on the replica where a test needs a
write that the replica has not seen.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.utils import load_backend
from django.test import Client
from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey, Role
from accounts.services import add_member, create_api_key
from cxcore.db_router import (
    PIN_COOKIE,
    PRIMARY_APPS,
    ReplicaRouter,
    Unit,
    current_unit,
    replica_aliases,
    replica_reads,
    unit_of_work,
    writes,
)
from cxcore.models import Customer, Episode
from recovery.models import CaseStatus, RecoveryCase
from recovery.reconcile import reconcile_case_marks
from recovery.services import create_default_playbooks, dismiss_case
from recovery.sweep import sweep_recovery
from tests.factories import CustomerFactory, OrganizationFactory, UserFactory
from tests.processes import group_alive, kill_group, start_group, stop_group
from tests.recovery.conftest import log

BASE_DIR = Path(__file__).resolve().parents[2]
router = ReplicaRouter()


# --- the router's rules, on plain aliases (nothing connects to them) -------------------------


@contextmanager
def aliases(*names: str) -> Iterator[None]:
    """Replica aliases in the connection settings, pointing nowhere: the rules only name them."""
    for name in names:
        connections.settings[name] = {**connections.settings[DEFAULT_DB_ALIAS], "PORT": 1}
    try:
        yield
    finally:
        for name in names:
            del connections.settings[name]


def test_without_a_replica_every_read_and_write_is_the_primarys():
    if replica_aliases():
        pytest.skip("DATABASE_REPLICA_URL is set for this run")
    with replica_reads():
        assert current_unit() is None  # nothing to route: no unit, no watching
        assert router.db_for_read(RecoveryCase) == "default"
    assert router.db_for_write(RecoveryCase) == "default"


def test_reads_go_to_a_replica_only_inside_the_scope():
    with aliases("replica"):
        assert router.db_for_read(RecoveryCase) == "default"
        with replica_reads():
            assert router.db_for_read(RecoveryCase) == "replica"
            assert router.db_for_read(Episode) == "replica"
            with replica_reads():  # nested: the same unit
                assert router.db_for_read(Customer) == "replica"
            assert router.db_for_read(Customer) == "replica"
        assert router.db_for_read(RecoveryCase) == "default"
        assert router.db_for_write(RecoveryCase) == "default"


def test_a_unit_that_wrote_reads_the_primary_from_then_on():
    with aliases("replica"), replica_reads():
        assert router.db_for_read(RecoveryCase) == "replica"
        router.db_for_write(Episode)
        assert router.db_for_read(RecoveryCase) == "default"
        assert router.db_for_read(Customer) == "default"
    with aliases("replica"), replica_reads():  # the next task is a unit of its own
        assert router.db_for_read(RecoveryCase) == "replica"


def test_writes_to_sessions_keys_and_lockouts_do_not_pin_the_unit():
    with aliases("replica"), replica_reads():
        router.db_for_write(Session)
        router.db_for_write(ApiKey)
        assert router.db_for_read(RecoveryCase) == "replica"


def test_authorization_and_sessions_are_always_read_from_the_primary():
    assert {"accounts", "auth", "sessions", "axes", "django_cache"} <= PRIMARY_APPS
    with aliases("replica"), replica_reads():
        assert router.db_for_read(ApiKey) == "default"
        assert router.db_for_read(Session) == "default"
        assert router.db_for_read(RecoveryCase) == "replica"


def test_a_browser_pinned_to_the_primary_reads_it():
    with aliases("replica"), unit_of_work(Unit(primary=True)), replica_reads():
        assert router.db_for_read(RecoveryCase) == "default"


def test_a_unit_reads_from_one_replica_and_units_spread_over_them():
    chosen = set()
    with aliases("replica", "replica_2"):
        assert replica_aliases() == ("replica", "replica_2")
        for _ in range(60):
            with replica_reads():
                first = router.db_for_read(RecoveryCase)
                assert {router.db_for_read(m) for m in (Episode, Customer, RecoveryCase)} == {first}
                chosen.add(first)
    assert chosen == {"replica", "replica_2"}


def test_migrations_run_on_the_primary_and_relations_span_the_copies():
    with aliases("replica"):
        assert router.allow_migrate("default", "recovery")
        assert not router.allow_migrate("replica", "recovery")
        on_replica, on_primary = Customer(), Customer()
        on_replica._state.db, on_primary._state.db = "replica", "default"
        assert router.allow_relation(on_replica, on_primary)


@pytest.mark.parametrize(
    ("sql", "wrote"),
    [
        ('SELECT "recovery_recoverycase"."id" FROM "recovery_recoverycase"', False),
        ("  select 1", False),
        ('SAVEPOINT "s1_x1"', False),
        ('RELEASE SAVEPOINT "s1_x1"', False),
        ("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", False),
        ('UPDATE "cxcore_customer" SET "recovery_due_at" = NULL', True),
        ('INSERT INTO "cxcore_episode" ("kind") VALUES (%s)', True),
        ('DELETE FROM "recovery_recoverycase" WHERE id = 1', True),
        ("WITH moved AS (UPDATE cxcore_customer SET name = '') SELECT 1", True),
        ('UPDATE "django_session" SET "expire_date" = %s', False),
        ('UPDATE "accounts_apikey" SET "last_used_at" = %s', False),
        ('INSERT INTO "axes_accessattempt" ("username") VALUES (%s)', False),
    ],
)
def test_statements_on_the_primary_count_as_writes_unless_they_only_read(sql, wrote):
    assert writes(sql) is wrote


def test_settings_make_one_alias_per_replica_url_with_the_primarys_options(tmp_path):
    primary = "postgres://app:pw@db.internal:5432/comeback"
    replicas = (
        "postgres://app:pw@replica-a:5432/comeback, postgres://app:pw@replica-b:6432/comeback"
    )
    found = settings_in_a_fresh_process(
        tmp_path, DATABASE_URL=primary, DATABASE_REPLICA_URL=replicas, CONN_MAX_AGE="30"
    )
    assert sorted(found) == ["default", "replica", "replica_2"]
    assert (found["replica"]["HOST"], found["replica_2"]["PORT"]) == ("replica-a", 6432)
    for alias in ("replica", "replica_2"):
        assert found[alias]["CONN_MAX_AGE"] == 30
        assert found[alias]["CONN_HEALTH_CHECKS"] is True
        assert found[alias]["TEST"]["MIRROR"] == "default"


def test_without_replica_urls_the_embedded_default_is_untouched(tmp_path):
    found = settings_in_a_fresh_process(tmp_path)
    assert list(found) == ["default"]
    assert found["default"]["ENGINE"] == "django.db.backends.sqlite3"


def test_a_replica_beside_sqlite_stops_start_up(tmp_path):
    result = fresh_settings_process(
        tmp_path, DATABASE_REPLICA_URL="postgres://app@replica/comeback"
    )
    assert result.returncode != 0
    assert "DATABASE_REPLICA_URL needs DATABASE_URL=postgres://" in result.stderr


def fresh_settings_process(var_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps({a: {k: v for k, v in c.items() if k != 'NAME'} "
        "for a, c in settings.DATABASES.items()}, default=str))"
    )
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "DATABASE_REPLICA_URL", "CONN_MAX_AGE")
    }
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "cxcore.settings",
            "COMEBACK_VAR_DIR": str(var_dir),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def settings_in_a_fresh_process(var_dir: Path, **env: str) -> dict[str, dict]:
    result = fresh_settings_process(var_dir, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- a real streaming replica ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_bindir() -> Path | None:
    """Where initdb and postgres are: PG_BINDIR, else `pg_config --bindir`, else Debian's."""
    candidates = [os.environ.get("PG_BINDIR", "")]
    if shutil.which("pg_config"):
        candidates.append(
            subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        )
    candidates += sorted(map(str, Path("/usr/lib/postgresql").glob("*/bin")), reverse=True)
    for candidate in filter(None, candidates):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    return None


def as_server_user(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its programs as `postgres`."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass
class Server:
    bindir: Path
    data: Path
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        command = [
            str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.data}",
            "-c", "fsync=off", "-c", "full_page_writes=off",
            "-c", "shared_buffers=16MB", "-c", "max_connections=30",
            "-c", "log_statement=all", "-c", "log_line_prefix=%m [%p] ",
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.process = start_group(
                as_server_user(command), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"postgres on {self.port} exited:\n{self.log.read_text()[-3000:]}")
            try:
                psycopg.connect(self.dsn("postgres"), connect_timeout=1).close()
                return
            except psycopg.OperationalError:
                time.sleep(0.1)
        pytest.fail(f"postgres on {self.port} not ready in {timeout}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is None:
            return
        kill_group(self.process, signal.SIGINT)  # fast shutdown: sessions are ended, not awaited
        if group_alive(self.process, within=10):
            stop_group(self.process)
        self.process.wait(timeout=10)

    def dsn(self, name: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={name}"

    def log_size(self) -> int:
        return self.log.stat().st_size

    def statements_since(self, offset: int) -> str:
        with self.log.open("rb") as text:
            text.seek(offset)
            return text.read().decode(errors="replace")


@dataclass
class Replicated:
    primary: Server
    replica: Server
    name: str  # the database on both


def run(args: list[str], **kwargs) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, **kwargs)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def test_database(django_db_setup, django_db_blocker) -> Iterator[dict]:
    """The suite's test database: pytest-django's, or made here when no test of this run needs
    one of its own (this module's servers run on connections of their own)."""
    made = None
    if not str(connections[DEFAULT_DB_ALIAS].settings_dict["NAME"]).startswith("test_"):
        with django_db_blocker.unblock():
            made = setup_databases(verbosity=0, interactive=False, aliases={DEFAULT_DB_ALIAS: {}})
    try:
        yield connections[DEFAULT_DB_ALIAS].settings_dict
    finally:
        if made is not None:
            with django_db_blocker.unblock():
                teardown_databases(made, verbosity=0)


@pytest.fixture(scope="module")
def replicated(test_database) -> Iterator[Replicated]:
    """A primary of our own holding a copy of the test database, and its streaming replica."""
    bindir = server_bindir()
    if bindir is None:
        pytest.skip("needs PostgreSQL's server programs (initdb, postgres): set PG_BINDIR")
    if os.geteuid() == 0:
        try:
            server_user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root needs a `postgres` user to run the servers as")
    base = Path(tempfile.mkdtemp(prefix="comeback-replica-"))
    if os.geteuid() == 0:
        os.chown(base, server_user.pw_uid, server_user.pw_gid)
    primary = Server(bindir, base / "primary", free_port(), base / "primary.log")
    replica = Server(bindir, base / "replica", free_port(), base / "replica.log")
    test_db = test_database
    assert str(test_db["NAME"]).startswith("test_"), "copy the test database, never another"
    try:
        initdb = [str(bindir / "initdb"), "-D", str(primary.data), "-U", "postgres", "-A", "trust",
                  "--no-sync", "--no-instructions", "-E", "UTF8"]  # fmt: skip
        run(as_server_user(initdb))
        primary.start()
        with psycopg.connect(primary.dsn("postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE comeback TEMPLATE template0 ENCODING 'UTF8'")
        # The test database pytest-django migrated, schema and rows, into our primary.
        where = ["-h", str(test_db["HOST"] or "127.0.0.1"), "-p", str(test_db["PORT"] or 5432),
                 "-U", str(test_db["USER"] or "postgres")]  # fmt: skip
        env = {**os.environ, "PGPASSWORD": str(test_db["PASSWORD"] or "")}
        dump = subprocess.Popen(
            [str(bindir / "pg_dump"), *where, "-d", str(test_db["NAME"]), "--no-owner",
             "--no-privileges"], stdout=subprocess.PIPE, env=env,
        )  # fmt: skip
        run([str(bindir / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-d", primary.dsn("comeback")],
            stdin=dump.stdout)  # fmt: skip
        assert dump.wait(timeout=60) == 0
        run(as_server_user([str(bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p",
                            str(primary.port), "-U", "postgres", "-D", str(replica.data), "-R",
                            "-X", "stream", "-c", "fast", "--no-sync"]))  # fmt: skip
        replica.start()
        yield Replicated(primary, replica, "comeback")
    finally:
        replica.stop()
        primary.stop()
        shutil.rmtree(base, ignore_errors=True)
    for server in (primary, replica):
        assert server.process is None or not group_alive(server.process, within=1)


@pytest.fixture
def routed(replicated, django_db_blocker) -> Iterator[Replicated]:
    """`default` is our primary and `replica` its standby, for this test: connections of their
    own, in autocommit, so what the test writes is committed where the replica can see it; the
    suite's connection is put back as it was."""
    suite = connections[DEFAULT_DB_ALIAS]
    ours = {
        **suite.settings_dict,
        "HOST": "127.0.0.1",
        "PORT": replicated.primary.port,
        "NAME": replicated.name,
        "USER": "postgres",
        "PASSWORD": "",
    }
    backend = load_backend(ours["ENGINE"])
    connections[DEFAULT_DB_ALIAS] = backend.DatabaseWrapper(ours, DEFAULT_DB_ALIAS)
    connections.settings["replica"] = {
        **ours,
        "PORT": replicated.replica.port,
        "TEST": {**ours["TEST"], "MIRROR": "default"},
    }
    try:
        with django_db_blocker.unblock():
            yield replicated
    finally:
        for alias in (DEFAULT_DB_ALIAS, "replica"):
            connections[alias].close()
        del connections["replica"]
        del connections.settings["replica"]
        connections[DEFAULT_DB_ALIAS] = suite


def caught_up(timeout: float = 10) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()")
        (lsn,) = cursor.fetchone()
    deadline = time.monotonic() + timeout
    with connections["replica"].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn])
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    pytest.fail(f"the replica did not replay {lsn} in {timeout}s")


@contextmanager
def replay_paused() -> Iterator[None]:
    """The replica stops replaying: what the primary writes meanwhile, it does not have."""
    caught_up()
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_wal_replay_pause()")
        for _ in range(100):
            cursor.execute("SELECT pg_get_wal_replay_pause_state()")
            if cursor.fetchone()[0] == "paused":
                break
            time.sleep(0.05)
    try:
        yield
    finally:
        with connections["replica"].cursor() as cursor:
            cursor.execute("SELECT pg_wal_replay_resume()")


TABLE = re.compile(r'(?:FROM|JOIN|UPDATE|INTO)\s+"(\w+)"')
PRIMARY_TABLE_PREFIXES = ("accounts_", "auth_", "django_session", "django_content_type", "axes_")


def tables(captured: CaptureQueriesContext) -> set[str]:
    return {t for query in captured.captured_queries for t in TABLE.findall(query["sql"])}


@contextmanager
def reads() -> Iterator[tuple[CaptureQueriesContext, CaptureQueriesContext]]:
    with (
        CaptureQueriesContext(connections["replica"]) as on_replica,
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_primary,
    ):
        yield on_replica, on_primary


def a_chain_with_open_cases(count: int = 3):
    """An organization with `count` open recovery cases, its owner and an org-wide key."""
    org = OrganizationFactory.create()
    create_default_playbooks(organization=org)
    owner = UserFactory.create()
    add_member(organization=org, user=owner, role=Role.OWNER, locations=[])
    at = timezone.now() - timedelta(hours=30)
    for n in range(count):
        customer = CustomerFactory.create(organization=org, name=f"Guest {n}")
        log(
            org, customer, at - timedelta(minutes=n), kind="complaint", experience=-1,
            touchpoints=[{"code": "wait", "third_party": False}],
        )  # fmt: skip
    sweep_recovery(now=at + timedelta(hours=3))
    _, raw_key = create_api_key(organization=org, name="HQ")
    return org, owner, raw_key


# Boots servers. No django_db mark: the test runs on `routed`'s connections, in autocommit.
real_replica = pytest.mark.slow


def key_client(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@real_replica
def test_the_standby_is_a_standby_streaming_from_our_primary(routed):
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), status FROM pg_stat_wal_receiver")
        assert cursor.fetchone() == (True, "streaming")
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), count(*) FROM pg_stat_replication")
        assert cursor.fetchone() == (False, 1)


@real_replica
def test_the_insights_page_and_the_queue_api_are_read_on_the_replica(routed):
    _, owner, raw_key = a_chain_with_open_cases(3)
    page, api = logged_in(owner), key_client(raw_key)
    caught_up()
    replica_log, primary_log = routed.replica.log_size(), routed.primary.log_size()
    with reads() as (on_replica, on_primary):
        insights = page.get(reverse("insights"))
        listed = api.get("/api/v1/cases/")  # the key's first use stamps it: that pins nothing
    assert insights.status_code == 200 and listed.status_code == 200
    assert len(listed.json()["results"]) == 3
    assert {"recovery_recoverycase", "cxcore_episode"} <= tables(on_replica)
    # The primary answered only who is asking (the session, the key, the membership).
    assert all(t.startswith(PRIMARY_TABLE_PREFIXES) for t in tables(on_primary)), tables(on_primary)
    # And the servers say so themselves, in their own statement logs.
    assert '"recovery_recoverycase"' in routed.replica.statements_since(replica_log)
    on_primary_log = routed.primary.statements_since(primary_log)
    assert '"accounts_apikey"' in on_primary_log
    assert '"recovery_recoverycase"' not in on_primary_log


@real_replica
def test_the_queue_page_and_its_csv_are_read_on_the_replica(routed):
    _, owner, _ = a_chain_with_open_cases(2)
    client = logged_in(owner)
    caught_up()
    with reads() as (on_replica, on_primary):
        queue = client.get(reverse("queue"))
        export = client.get(reverse("queue-export"))
        body = b"".join(export.streaming_content)  # type: ignore[attr-defined]  # read as it streams, after the view returned
    assert queue.status_code == 200 and export.status_code == 200
    assert len(body.decode().strip().splitlines()) == 1 + 2
    assert "recovery_recoverycase" in tables(on_replica)
    assert all(t.startswith(PRIMARY_TABLE_PREFIXES) for t in tables(on_primary)), tables(on_primary)


@real_replica
def test_a_task_that_wrote_reads_its_own_write_from_the_primary(routed):
    org, _, _ = a_chain_with_open_cases(2)
    open_cases = RecoveryCase.objects.filter(organization=org, status=CaseStatus.OPEN)
    with replay_paused():
        with replica_reads(), reads() as (on_replica, on_primary):
            assert open_cases.count() == 2
            assert len(on_replica) == 1 and len(on_primary) == 0
            dismiss_case(case=open_cases.earliest("pk"), reason="spoke to them")
            with CaptureQueriesContext(connections["replica"]) as after_write:
                assert open_cases.count() == 1  # its own write, from the primary
            assert len(after_write) == 0
        with replica_reads():  # another task, which wrote nothing: the replica, not replayed yet
            assert open_cases.count() == 2
    caught_up()
    with replica_reads():
        assert open_cases.count() == 1


@real_replica
def test_reads_inside_a_transaction_on_the_primary_stay_on_it(routed):
    org, _, _ = a_chain_with_open_cases(1)
    caught_up()
    with replica_reads(), transaction.atomic(), reads() as (on_replica, on_primary):
        assert RecoveryCase.objects.filter(organization=org).count() == 1
    assert len(on_replica) == 0 and len(on_primary) == 1


@real_replica
def test_an_export_lists_its_own_read_because_it_wrote_it_first(routed):
    org, _, raw_key = a_chain_with_open_cases(1)
    customer = Customer.objects.get(organization=org)
    with replay_paused():
        response = key_client(raw_key).get(f"/api/v1/customers/{customer.pk}/export/")
        document = json.loads(b"".join(response.streaming_content))  # type: ignore[attr-defined]
    assert response.status_code == 200
    assert [read["action"] for read in document["read_audit"]] == ["export"]


@real_replica
def test_a_post_pins_its_browser_to_the_primary_for_a_few_seconds(routed):
    org, owner, _ = a_chain_with_open_cases(2)
    browser, elsewhere = logged_in(owner), logged_in(owner)
    case = RecoveryCase.objects.filter(organization=org).earliest("pk")
    with replay_paused():
        posted = browser.post(
            reverse("queue-bulk"), {"cases": [case.pk], "action": "dismiss", "reason": "called"}
        )
        assert posted.status_code == 302
        pin = posted.cookies[PIN_COOKIE]
        assert int(pin["max-age"]) == settings.REPLICA_PIN_SECONDS
        assert pin["httponly"]
        with reads() as (on_replica, _):
            after_post = browser.get(posted["Location"])
        assert len(on_replica) == 0
        assert f'id="case-{case.pk}"' not in after_post.content.decode()  # the owner's change
        # Another browser, which posted nothing, reads the replica (not replayed yet).
        assert f'id="case-{case.pk}"' in elsewhere.get(reverse("queue")).content.decode()
    browser.cookies.pop(PIN_COOKIE)  # expired
    caught_up()
    with reads() as (on_replica, _):
        browser.get(reverse("queue"))
    assert "recovery_recoverycase" in tables(on_replica)


@real_replica
def test_the_reconcile_scans_marks_on_the_replica_and_repairs_only_what_the_primary_agrees(
    routed,
):
    org, _, _ = a_chain_with_open_cases(2)
    drifted, repaired_meanwhile = Customer.objects.filter(organization=org).order_by("pk")
    marks = Customer.objects.filter(pk__in=[drifted.pk, repaired_meanwhile.pk])
    # A mark that drifted before the replica's last replay, then put right on the primary alone.
    Customer.objects.filter(pk=repaired_meanwhile.pk).update(recovery_case_open=False)
    caught_up()
    with replay_paused():
        Customer.objects.filter(pk=repaired_meanwhile.pk).update(recovery_case_open=True)
        Customer.objects.filter(pk=drifted.pk).update(recovery_case_open=False)  # unseen there
        replica_log = routed.replica.log_size()
        assert reconcile_case_marks() == 0  # the replica's candidate re-checked on the primary
        assert '"recovery_recoverycase"' in routed.replica.statements_since(replica_log)
    assert set(marks.values_list("recovery_case_open", flat=True)) == {False, True}
    caught_up()
    assert reconcile_case_marks() == 1  # the drift the replica now has: repaired
    assert set(marks.values_list("recovery_case_open", flat=True)) == {True}

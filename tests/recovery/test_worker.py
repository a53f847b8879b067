"""The recovery engine with a real Celery worker and beat on a real Redis (DESIGN.md inv. 5)."""

import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from cxcore.models import Customer, Episode
from cxcore.services import EpisodeInput, record_episodes_bulk
from recovery.models import RecoveryCase
from tests.conftest import key_client
from tests.processes import group_alive, kill_group, start_group, stop_group

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A Redis server of the test's own, so it can be stopped without disturbing anything."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.dir = tmp_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        redis_server = shutil.which("redis-server")
        assert redis_server is not None  # the fixture fails first without it
        self.process = start_group(
            [redis_server, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: _listening(self.port), 10, "redis to start")

    def stop(self) -> None:
        if self.process is not None:
            kill_group(self.process)
            self.process.wait(timeout=10)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: the suite needs Redis (see README)")
    server = Redis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def worker(tmp_path):
    """Start `celery worker --beat` on the test database; stop (or kill) it afterwards."""
    started: list[subprocess.Popen] = []
    db = connection.settings_dict

    def start(broker_url: str, *, beat: bool = True, batch: int = 1000) -> subprocess.Popen:
        env = os.environ | {
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "CELERY_BROKER_URL": broker_url,
            "SWEEP_EVERY_SECONDS": "1",
            "SWEEP_BATCH_SIZE": str(batch),
            "COMEBACK_VAR_DIR": str(tmp_path),
        }
        args = [str(Path(sys.executable).parent / "celery"), "-A", "cxcore", "worker",
                "--pool=solo", "--loglevel=warning", "--without-heartbeat", "--without-gossip",
                "--without-mingle"]  # fmt: skip
        if beat:
            args += ["--beat", f"--schedule={tmp_path}/beat-{len(started)}"]
        process = start_group(
            args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            stop_group(process)
        # Nothing outlives the test: not the worker, not its embedded beat.
        assert not [p.pid for p in started if group_alive(p)]


def due_complaints(org, count: int) -> None:
    at = timezone.now() - timedelta(hours=3)
    items = [
        EpisodeInput(kind="complaint", identifiers={"card": f"C{n}"}, experience=-1, occurred_at=at)
        for n in range(count)
    ]
    for start in range(0, count, 500):
        record_episodes_bulk(organization=org, items=items[start : start + 500])


def test_beat_and_a_worker_open_the_case_of_a_due_customer(org, main_st, redis, worker):
    due_complaints(org, 3)
    worker(redis.url)
    wait_until(lambda: RecoveryCase.objects.count() == 3, 60, "the sweep to open 3 cases")
    assert not Customer.objects.filter(recovery_due_at__isnull=False).exists()


@pytest.fixture
def publish_to(settings):
    """Point this process's Celery publishing at another broker (the one the test stops)."""
    from cxcore import celery_app

    original = celery_app.conf.broker_write_url

    def use(url):
        celery_app.conf.broker_write_url = url
        celery_app._pool = None  # drop cached pools (not close: kombu shares them)
        celery_app.amqp._producer_pool = None

    yield use
    use(original)


def test_writes_succeed_with_redis_down_and_the_case_opens_once_it_is_back(
    org, main_st, org_key, redis, worker, publish_to
):
    publish_to(redis.url)  # anything the request path published would go to this Redis
    redis.stop()
    at = (timezone.now() - timedelta(hours=3)).isoformat()
    started = time.monotonic()
    response = key_client(org_key).post(
        "/api/v1/episodes/",
        {"customer": {"phone": "07400 123456"}, "kind": "complaint", "experience": -2,
         "occurred_at": at},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201
    assert time.monotonic() - started < 2  # not a speed test: it must not wait on the broker
    redis.start()
    worker(redis.url)
    wait_until(lambda: RecoveryCase.objects.count() == 1, 60, "the case once Redis is back")


def test_a_worker_killed_mid_sweep_loses_nothing(org, main_st, redis, worker):
    due_complaints(org, 3000)
    first = worker(redis.url, batch=50)
    wait_until(lambda: RecoveryCase.objects.exists(), 60, "the sweep to start")
    kill_group(first)  # the worker and its beat, in the middle of a batch most likely
    first.wait(timeout=10)
    opened = RecoveryCase.objects.count()
    assert opened < 3000, "the sweep finished before the kill; make it bigger"
    worker(redis.url, batch=500)
    wait_until(lambda: RecoveryCase.objects.count() == 3000, 120, "the next run to finish")
    assert Episode.objects.count() == 3000
    assert Customer.objects.filter(recovery_case_open=True).count() == 3000
    assert not Customer.objects.filter(recovery_due_at__isnull=False).exists()


def test_two_workers_each_with_beat_open_exactly_one_case_per_customer(org, main_st, redis, worker):
    """Two beats (a misconfigured deployment) sweeping the same customers at the same time."""
    due_complaints(org, 2000)
    worker(redis.url, batch=100)
    worker(redis.url, batch=100)
    wait_until(
        lambda: not Customer.objects.filter(recovery_due_at__isnull=False).exists(),
        120,
        "both sweeps to finish",
    )
    assert RecoveryCase.objects.count() == 2000
    assert RecoveryCase.objects.values("customer").distinct().count() == 2000

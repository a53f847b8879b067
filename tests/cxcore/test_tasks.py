"""Invariant 5 and the Celery wiring: the request path never waits on the broker, and the real
worker runs our tasks through Redis."""

import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from cxcore import celery_app
from cxcore.models import Episode, IdempotencyRecord
from cxcore.services import purge_idempotency_records
from cxcore.tasks import purge_idempotency_keys_task
from tests.processes import start_group, stop_group

ROOT = Path(__file__).resolve().parents[2]
PAYLOAD = {"customer": {"phone": "07400 123456"}, "kind": "complaint", "experience": -2}


@pytest.fixture
def broker_url():
    """Point the Celery app at another broker for one test."""
    original = celery_app.conf.broker_write_url

    def use(url):
        # Publishing goes to the write URL. Drop the app's cached pools (not close them: kombu
        # shares them) so the next publish, if any, connects to the new URL.
        celery_app.conf.broker_write_url = url
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    yield use
    use(original)


@pytest.fixture
def hung_broker():
    """A TCP server that accepts connections and never answers: a hung Redis."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_publish_to_the_dead_broker_would_fail(broker_url):
    """Guards the two tests below: the broker really is unreachable for a publish."""
    broker_url(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(Exception, match=r"(?i)connect|refused"):
        purge_idempotency_keys_task.apply_async(retry=False)


def test_episode_writes_succeed_with_the_broker_down(api, broker_url):
    broker_url(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    for n in range(3):
        response = api.post("/api/v1/episodes/", PAYLOAD | {"summary": f"#{n}"}, format="json")
        assert response.status_code == 201
    assert Episode.objects.count() == 3


def test_episode_writes_succeed_with_the_broker_hung(api, broker_url, hung_broker):
    broker_url(hung_broker)
    started = time.monotonic()
    response = api.post("/api/v1/episodes/bulk/", {"episodes": [PAYLOAD] * 5}, format="json")
    assert response.status_code == 200
    assert response.json()["created"] == 5
    # Not a speed test: a write that waited on the hung broker would sit here for its timeouts.
    assert time.monotonic() - started < 10


def test_purge_drops_only_expired_idempotency_records(db):
    now = timezone.now()
    for age, key in (
        (settings.IDEMPOTENCY_KEY_TTL + timedelta(hours=1), "old"),
        (timedelta(0), "new"),
    ):
        IdempotencyRecord.objects.create(
            scope="key:1", key=key, request_fingerprint="x", created_at=now - age
        )
    assert purge_idempotency_records(now=now) == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_tasks_through_redis():
    """Enqueue on the real Redis; a real worker process, on the test database, runs the task."""
    assert celery_app.conf.broker_url.startswith("redis://"), "make test runs on Redis"
    IdempotencyRecord.objects.create(
        scope="key:1",
        key="expired",
        request_fingerprint="x",
        created_at=timezone.now() - settings.IDEMPOTENCY_KEY_TTL - timedelta(days=1),
    )
    db = connection.settings_dict
    env = os.environ | {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": celery_app.conf.broker_url,
        "DEBUG": "true",
    }
    celery = Path(sys.executable).parent / "celery"
    queue = f"test-{os.getpid()}"
    worker = start_group(
        [str(celery), "-A", "cxcore", "worker", "--pool=solo", "-Q", queue, "--loglevel=warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        purge_idempotency_keys_task.apply_async(queue=queue)
        deadline = time.monotonic() + 60
        while IdempotencyRecord.objects.exists() and time.monotonic() < deadline:
            assert worker.poll() is None, "the worker died"
            time.sleep(0.25)
        assert not IdempotencyRecord.objects.exists(), "the worker did not run the task"
    finally:
        stop_group(worker)

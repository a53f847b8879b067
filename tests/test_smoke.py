"""Boot the embedded default the way `make run` does, isolated, and use it end to end.

SQLite and the filesystem Celery broker in a temporary COMEBACK_VAR_DIR; a real runserver and a
real Celery worker with beat, as subprocesses. Every wait is bounded; every process is ended.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.processes import start_group, stop_group

pytestmark = pytest.mark.slow

BASE_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# What a bare laptop does not have: the embedded default must work without any of it.
NOT_ON_A_LAPTOP = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "DJANGO_SETTINGS_MODULE",
)
DANIEL_PHONE = "07400900555"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOT_ON_A_LAPTOP}
    env.update(COMEBACK_VAR_DIR=str(var_dir), PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        # Its own process group, so its children (gunicorn's and Celery's) end with it.
        return start_group(
            command,
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def stop(process: subprocess.Popen) -> None:
    stop_group(process)


def wait_for(
    what: str, check: Callable[[], bool], timeout: float, processes: dict[str, tuple]
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        for name, (process, log) in processes.items():
            if process.poll() is not None:
                pytest.fail(f"{name} exited ({process.returncode}) while waiting for {what}:\n"
                            f"{log.read_text(errors='replace')[-4000:]}")  # fmt: skip
        time.sleep(0.25)
    logs = "\n".join(
        f"--- {name}:\n{log.read_text(errors='replace')[-3000:]}"
        for name, (_, log) in processes.items()
    )
    pytest.fail(f"Timed out after {timeout}s waiting for {what}.\n{logs}")


def match_in(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text)
    assert match is not None, f"no match for {pattern!r}"
    return match


def healthy(base: str) -> bool:
    try:
        response = requests.get(f"{base}/healthz", timeout=2)
    except requests.RequestException:
        return False
    return response.status_code == 200 and response.json() == {"status": "ok"}


def test_the_embedded_default_runs_end_to_end(tmp_path):
    started = time.monotonic()
    var_dir = tmp_path / "var"
    env = embedded_env(var_dir)

    manage(env, "migrate", "--noinput")
    assert (var_dir / "comeback.sqlite3").exists()  # SQLite in the var dir, not PostgreSQL
    manage(env, "seed_demo")
    credentials = (var_dir / "demo-credentials.txt").read_text()
    api_key = match_in(r"API key \(Main Street till\): (\S+)", credentials)[1]
    owner_email, owner_password = match_in(r"owner login: (\S+) / (\S+)", credentials).groups()
    assert "Demo data already loaded." in manage(env, "seed_demo")  # a second run is harmless

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web_log, worker_log = tmp_path / "web.log", tmp_path / "celery.log"
    processes: dict[str, tuple] = {}
    try:
        web = start(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            env,
            web_log,
        )
        processes["runserver"] = (web, web_log)
        worker = start(
            [str(BIN / "celery"), "-A", "cxcore", "worker", "--beat", "--concurrency=1",
             "--schedule", str(var_dir / "beat"), "--loglevel=info"],
            env,
            worker_log,
        )  # fmt: skip
        processes["celery"] = (worker, worker_log)

        wait_for("/healthz", lambda: healthy(base), 60, processes)

        # A POS logs an episode with the demo key.
        auth = {"Authorization": f"Api-Key {api_key}"}
        response = requests.post(
            f"{base}/api/v1/episodes/",
            json={
                "customer": {"phone": "07400 900555"},
                "kind": "compliment",
                "summary": "Smoke test: thank you for the almond-milk latte.",
                "experience": 2,
            },
            headers=auth,
            timeout=10,
        )
        assert response.status_code == 201, response.text
        episode = response.json()
        assert episode["location"] == "main-street"
        assert episode["experience"] == 2

        found = requests.get(
            f"{base}/api/v1/customers/", params={"phone": DANIEL_PHONE}, headers=auth, timeout=10
        )
        assert found.status_code == 200, found.text
        [daniel] = found.json()["results"]
        assert daniel["name"] == "Daniel Reyes"
        assert daniel["id"] == episode["customer"]
        assert requests.get(f"{base}/api/v1/customers/", timeout=10).status_code == 401

        # The owner logs in through the form and reads Daniel's narrative.
        session = requests.Session()
        login = session.get(f"{base}/accounts/login/", timeout=10)
        assert login.status_code == 200
        token = match_in(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)[1]
        response = session.post(
            f"{base}/accounts/login/",
            data={"username": owner_email, "password": owner_password,
                  "csrfmiddlewaretoken": token, "next": ""},
            allow_redirects=False,
            timeout=10,
        )  # fmt: skip
        assert response.status_code == 302, response.text[:2000]
        assert response.headers["Location"] == "/customers/"
        page = session.get(f"{base}/customers/{daniel['id']}/", timeout=10)
        assert page.status_code == 200
        assert "<h1>Daniel Reyes</h1>" in page.text
        assert "Smoke test: thank you for the almond-milk latte." in page.text
        assert "forgot to ring in my salad" in page.text
        assert "Main Street" in page.text
        assert page.text.index("Smoke test") < page.text.index("forgot to ring in my salad")
        # Insights aggregate in the database; SQLite takes the medians' portable path.
        insights = session.get(f"{base}/insights/", {"start": "2020-01-01"}, timeout=10)
        assert insights.status_code == 200 and "<h1>Insights</h1>" in insights.text
        negatives = re.search(r'<span class="n">(\d+)</span> negative experiences', insights.text)
        assert negatives and int(negatives[1]) > 0
        assert session.get(f"{base}/static/css/app.css", timeout=10).status_code == 200
        assert session.get(f"{base}/static/vendor/htmx.min.js", timeout=10).status_code == 200

        # The worker (with beat) is up and runs a task sent through the filesystem broker.
        wait_for("the worker to be ready", lambda: " ready." in worker_log.read_text(), 60,
                 processes)  # fmt: skip
        assert "beat: Starting..." in worker_log.read_text()
        sent = manage(
            env,
            "shell",
            "-c",
            "from cxcore.tasks import purge_idempotency_keys_task as t; print(t.delay().id)",
            timeout=60,
        )
        task_id = sent.strip().splitlines()[-1]
        assert re.fullmatch(r"[0-9a-f-]{36}", task_id), sent
        done = f"Task cxcore.tasks.purge_idempotency_keys_task[{task_id}] succeeded"
        wait_for("the task to succeed", lambda: done in worker_log.read_text(), 60, processes)
        assert web.poll() is None and worker.poll() is None
    finally:
        for process, _ in processes.values():
            stop(process)
    assert "Traceback" not in web_log.read_text(errors="replace"), web_log.read_text()
    assert "Traceback" not in worker_log.read_text(errors="replace"), worker_log.read_text()
    print(f"\nsmoke test took {time.monotonic() - started:.1f}s")

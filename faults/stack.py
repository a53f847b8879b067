"""The stack the faults are injected into: a Redis of its own on a private port, gunicorn, a
Celery worker and Celery beat, each the leader of its own process group, all on 127.0.0.1.

Every process is stopped as a group when the stack closes, whatever happened (an exception, a
failed wait, Ctrl-C): `Stack` is a context manager and `close()` is idempotent.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import requests

from tests.processes import group_members, kill_group, start_group, stop_group

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# libpq reads PGAPPNAME: the stack's database backends carry these names, so a fault terminates
# the stack's connections only, never the runner's (nor the test's) own, nor anyone else's.
APP_NAME_PREFIX = "comeback-faults-"
# A gunicorn worker this old has imported the app (2-4 s on a busy 2-core machine).
WORKER_BOOTED = 6.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _age(pid: int) -> float:
    """Seconds since the process started (0 once it is gone)."""
    try:
        started = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return 0.0
    return uptime - started / os.sysconf("SC_CLK_TCK")


def wait_until(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {seconds:.0f}s waiting for {what}")


class Stack:
    """Start with `with Stack(work=…, database_url=…) as stack:`; the roles are `redis`, `web`,
    `worker` and `beat`."""

    def __init__(self, *, work: Path, database_url: str, web_workers: int = 2) -> None:
        self.work = work
        self.database_url = database_url
        self.web_workers = web_workers
        self.redis_port = free_port()
        self.web_port = free_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.started: list[subprocess.Popen[bytes]] = []  # every group, restarts included
        self._stopped_redis = False

    # --- life cycle ---

    def __enter__(self) -> Stack:
        self.work.mkdir(parents=True, exist_ok=True)
        try:
            self.start_redis()
            self.start_web()
            self.start_worker()
            self.start_beat()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop every group (a hung Redis is resumed first, so SIGTERM can reach it)."""
        redis = self.processes.get("redis")
        if redis is not None and self._stopped_redis:
            kill_group(redis, signal.SIGCONT)
        for name in ("web", "beat", "worker", "redis"):
            process = self.processes.pop(name, None)
            if process is not None:
                stop_group(process, timeout=15)

    def leftovers(self) -> list[int]:
        """Processes of any group the stack started that still run (should be none)."""
        return [pid for process in self.started for pid in group_members(process)]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}"

    def env(self, role: str) -> dict[str, str]:
        return os.environ | {
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": f"{self.redis_url}/0",
            # The throttle counters on the same Redis, as docker-compose runs it: a Redis fault
            # reaches the request path too (it must let requests through, not fail them).
            "CACHE_URL": f"{self.redis_url}/1",
            "DEBUG": "false",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or "faults-only-not-a-secret-" + "x" * 40,
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_HSTS_SECONDS": "0",
            # Throttles on (they use the cache) but far above what the load sends.
            "API_THROTTLE_RATE": "100000/min",
            "API_BULK_THROTTLE_RATE": "100000/min",
            "SWEEP_EVERY_SECONDS": "2",
            "COMEBACK_VAR_DIR": str(self.work / "var"),
            "PGAPPNAME": APP_NAME_PREFIX + role,
            # This tree's code, whichever checkout the virtualenv was installed from.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LOG_LEVEL": "WARNING",
        }

    def log(self, role: str) -> Path:
        return self.work / f"{role}.log"

    def _start(self, role: str, args: list[str]) -> subprocess.Popen[bytes]:
        with self.log(role).open("ab") as out:
            process = start_group(
                args,
                cwd=ROOT,
                env=self.env(role),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.processes[role] = process
        self.started.append(process)
        return process

    def _check_alive(self, role: str) -> None:
        process = self.processes[role]
        if process.poll() is not None:
            tail = self.log(role).read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{role} exited ({process.returncode}):\n{tail}")

    # --- Redis ---

    def start_redis(self) -> None:
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self._start(
            "redis",
            [redis_server, "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.work)],
        )  # fmt: skip
        self._stopped_redis = False
        wait_until(lambda: listening(self.redis_port), 10, "redis to listen")

    def kill_redis(self) -> None:
        process = self.processes.pop("redis")
        kill_group(process)
        process.wait(timeout=10)

    def hang_redis(self) -> None:
        """SIGSTOP: connections are accepted by the kernel and then nothing answers."""
        kill_group(self.processes["redis"], signal.SIGSTOP)
        self._stopped_redis = True

    def resume_redis(self) -> None:
        kill_group(self.processes["redis"], signal.SIGCONT)
        self._stopped_redis = False

    # --- web ---

    def start_web(self) -> None:
        self._start(
            "web",
            [str(BIN / "python"), "-m", "gunicorn", "cxcore.wsgi:application",
             "--bind", f"127.0.0.1:{self.web_port}", "--workers", str(self.web_workers),
             "--timeout", "30", "--graceful-timeout", "5", "--log-level", "info",
             # gunicorn 27's control socket defaults to one path per user: every gunicorn on
             # the machine would take it over from the last. This one needs none.
             "--no-control-socket"],
        )  # fmt: skip
        wait_until(self._web_ready, 90, "gunicorn to answer /healthz")

    def _web_ready(self) -> bool:
        self._check_alive("web")
        try:
            return requests.get(f"{self.base_url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def web_worker_pids(self) -> list[int]:
        """gunicorn's workers: its group but the master."""
        master = self.processes["web"]
        return [pid for pid in group_members(master) if pid != master.pid]

    def booted_web_workers(self) -> list[int]:
        """Workers up for WORKER_BOOTED seconds (a younger one is still importing the app)."""
        return [pid for pid in self.web_worker_pids() if _age(pid) >= WORKER_BOOTED]

    def kill(self, pid: int) -> bool:
        """SIGKILL one process of the stack (a gunicorn worker); False if it was gone."""
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def web_worker_on_port(self, port: int) -> int | None:
        """The gunicorn worker whose socket has local `port` (a database connection's
        client_port in pg_stat_activity), read from /proc."""
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
        for pid in self.web_worker_pids():
            try:
                links = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
            except OSError:
                continue
            if links & inodes:
                return pid
        return None

    # --- Celery ---

    def start_worker(self) -> None:
        self._start(
            "worker",
            [str(BIN / "celery"), "-A", "cxcore", "worker", "--pool=solo", "--loglevel=info",
             "--without-heartbeat", "--without-gossip", "--without-mingle"],
        )  # fmt: skip

    def kill_worker(self) -> None:
        process = self.processes.pop("worker")
        kill_group(process)
        process.wait(timeout=10)

    def start_beat(self) -> None:
        self._start(
            "beat",
            [str(BIN / "celery"), "-A", "cxcore", "beat", "--loglevel=info",
             f"--schedule={self.work / 'beat-schedule'}"],
        )  # fmt: skip

    def check_running(self) -> None:
        """Every role is up, and gunicorn's master has replaced every worker it lost."""
        for role in ("redis", "web", "worker", "beat"):
            self._check_alive(role)
        wait_until(
            lambda: len(self.web_worker_pids()) == self.web_workers,
            30,
            f"gunicorn to be back to {self.web_workers} workers",
        )

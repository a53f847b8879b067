"""gunicorn on the test database, as production runs it (gunicorn.conf.py, DEBUG off), in a
process group of its own that is stopped as a group however the test ends."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from django.conf import settings
from django.db import connection

from tests.processes import start_group, stop_group

BASE_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    db = connection.settings_dict
    user = db["USER"] or "postgres"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or "5432"
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


@dataclass
class Server:
    base: str
    host: str
    port: int
    access_log: Path
    log: Path


@contextlib.contextmanager
def gunicorn(tmp: Path, *, access_log: bool = True) -> Iterator[Server]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "API_THROTTLE_RATE": "off",
        "API_BULK_THROTTLE_RATE": "off",
        "CACHE_URL": "locmem://gunicorn-tests",
        "CELERY_BROKER_URL": "memory://",
        "COMEBACK_VAR_DIR": str(tmp / "var"),
        "PYTHONUNBUFFERED": "1",
    }
    access = tmp / "access.log"
    log = tmp / "gunicorn.log"
    args = [str(BIN / "gunicorn"), "cxcore.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"]
    if access_log:
        args += ["--access-logfile", str(access)]
    with log.open("wb") as out:
        process = start_group(
            args,
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
                # The API's 401 (JSON): pages need collected static files, which tests skip.
                if requests.get(f"{base}/api/v1/locations/", timeout=2).status_code == 401:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"gunicorn did not start:\n{log.read_text(errors='replace')[-4000:]}"
                )
            time.sleep(0.25)
        yield Server(base=base, host="127.0.0.1", port=port, access_log=access, log=log)
    finally:
        stop_group(process)

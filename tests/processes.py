"""Servers and workers a test starts run in a process group of their own and are stopped as a
group, even when the test fails: a Celery worker's embedded beat or gunicorn's workers must
not outlive the test (one once kept sweeping the test database after the suite ended)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def start_group(args: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start `args` as the leader of a new session (and so of a new process group)."""
    return subprocess.Popen(list(args), start_new_session=True, **kwargs)


def group_members(process: subprocess.Popen[bytes]) -> list[int]:
    """The live (not zombie) processes of the group, read from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ")".
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # it ended while we looked
        if int(pgrp) == process.pid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def group_alive(process: subprocess.Popen[bytes], *, within: float = 5) -> bool:
    """Whether any process of the group is still running `within` seconds from now."""
    deadline = time.monotonic() + within
    while group_members(process):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.1)
    return False


def kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Signal every process of the group (the leader may be gone already)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def stop_group(process: subprocess.Popen[bytes], *, timeout: float = 20) -> None:
    """SIGTERM the whole group, wait for the leader, then SIGKILL whatever is left."""
    kill_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process, signal.SIGKILL)
        process.wait(timeout=10)
    kill_group(process, signal.SIGKILL)  # children that outlived their leader

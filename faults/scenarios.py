"""The faults, each injected while the tills write and always undone before it returns.

A scenario is a function of a `Fault` context: it waits for a fraction of the load's planned
duration, breaks something, and puts it back in a `finally`, so a Ctrl-C or a failed step never
leaves Redis stopped or the worker dead for the next scenario.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection

from faults.oracle import busy_client_ports, terminate_stack_backends
from faults.stack import APP_NAME_PREFIX, Stack


@dataclass
class Fault:
    stack: Stack
    seconds: float  # the load's planned duration
    stop: threading.Event
    rng: random.Random
    started: float = field(default_factory=time.monotonic)
    notes: list[str] = field(default_factory=list)

    def until(self, fraction: float) -> bool:
        """Sleep until `fraction` of the planned duration has passed; False if told to stop."""
        left = self.started + fraction * self.seconds - time.monotonic()
        return not self.stop.wait(max(0.0, left))

    def before(self, fraction: float) -> bool:
        return not self.stop.is_set() and time.monotonic() < self.started + fraction * self.seconds


def no_fault(fault: Fault) -> None:
    """The control: the same load and checks on a stack left alone."""


def redis_killed(fault: Fault) -> None:
    """SIGKILL Redis (the broker and the throttles' cache); a new, empty one comes back later."""
    if not fault.until(0.25):
        return
    fault.stack.kill_redis()
    down = time.monotonic()
    try:
        fault.until(0.55)
    finally:
        fault.stack.start_redis()
        fault.notes.append(f"Redis down {time.monotonic() - down:.1f}s (restarted empty)")


def redis_hung(fault: Fault) -> None:
    """SIGSTOP Redis: connections open, nothing answers; SIGCONT later."""
    if not fault.until(0.25):
        return
    fault.stack.hang_redis()
    hung = time.monotonic()
    try:
        fault.until(0.55)
    finally:
        fault.stack.resume_redis()
        fault.notes.append(f"Redis hung {time.monotonic() - hung:.1f}s")


def database_backends_terminated(fault: Fault) -> None:
    """pg_terminate_backend on the stack's connections (web, worker): every 20 ms those in the
    middle of something (a request or a sweep in flight, a commit perhaps), every second or so
    all of them (a failover)."""
    if not fault.until(0.15):
        return
    busy = every = 0
    next_all = time.monotonic()
    try:
        while fault.before(0.8):
            if time.monotonic() >= next_all:
                every += terminate_stack_backends(APP_NAME_PREFIX)
                next_all = time.monotonic() + fault.rng.uniform(0.5, 1.5)
            else:
                busy += terminate_stack_backends(APP_NAME_PREFIX, busy_only=True)
            fault.stop.wait(0.02)
    finally:
        connection.close()  # this thread's own connection
        fault.notes.append(f"{busy} busy and {every} other backends terminated")


def web_workers_killed(fault: Fault) -> None:
    """SIGKILL a gunicorn worker now and then, found through its database connection
    (pg_stat_activity's client port, traced to the worker in /proc): by turns one inside a
    transaction (the write rolls back; the retry runs it) and one whose COMMIT just finished
    (the write is stored but its answer may be lost; the retry must get a replay, not a second
    episode); any booted worker if neither shows within a second. The master forks a
    replacement, which takes as long as importing the app (seconds, on a busy machine)."""
    if not fault.until(0.1):
        return
    killed: Counter[str] = Counter()
    try:
        while fault.before(0.8):
            after_commit = killed.total() % 2 == 1
            pid = None
            deadline = time.monotonic() + 1.0
            while pid is None and time.monotonic() < deadline and not fault.stop.is_set():
                ports = busy_client_ports(APP_NAME_PREFIX + "web", just_committed=after_commit)
                for port in ports:
                    pid = fault.stack.web_worker_on_port(port)
                    if pid is not None:
                        break
                else:
                    fault.stop.wait(0.005)
            how = "just after a commit" if after_commit else "mid-transaction"
            if pid is None:
                pid, how = fault.rng.choice(fault.stack.booted_web_workers() or [None]), "idle"
            if pid is not None and fault.stack.kill(pid):
                killed[how] += 1
            fault.stop.wait(fault.rng.uniform(0.5, 1.5))
    finally:
        connection.close()
        ways = ", ".join(f"{n} {how}" for how, n in sorted(killed.items()))
        fault.notes.append(f"{killed.total()} gunicorn workers killed ({ways or 'none'})")


def celery_worker_killed(fault: Fault) -> None:
    """SIGKILL the Celery worker's group (mid-sweep, likely: beat sends one every 2 s)."""
    if not fault.until(0.25):
        return
    fault.stack.kill_worker()
    down = time.monotonic()
    try:
        fault.until(0.55)
    finally:
        fault.stack.start_worker()
        fault.notes.append(f"worker down {time.monotonic() - down:.1f}s")


SCENARIOS: dict[str, Callable[[Fault], None]] = {
    "no fault": no_fault,
    "redis killed": redis_killed,
    "redis hung": redis_hung,
    "database backends terminated": database_backends_terminated,
    "gunicorn workers killed": web_workers_killed,
    "celery worker killed": celery_worker_killed,
}
# What the suite runs (tests/test_faults.py): the two faults that cut requests in flight.
SHORT = ("gunicorn workers killed", "database backends terminated")

"""The load: tills writing episodes through the real HTTP API, as a POS would, with a ledger.

Each write has its own Idempotency-Key, sent again unchanged on every retry (after a
connection error, a timeout, any 5xx, a 409 "still in progress" or a 429); every other write
also carries the key as its external_id, so both of the API's guards against duplicates are
exercised. The summary carries the key too ("ledger <key>"), which is how the database side
finds each write's rows whichever guard applied.

Customers are given stories whose outcome does not depend on the order the episodes arrive in
nor on when a sweep runs between them, so an oracle can say exactly who must have an open case:
- complained: one complaint, past the grace period -> an open case;
- soured: a good visit, then a complaint past the grace period -> an open case;
- recovered: a complaint, then a recovery call (a follow-up) -> no open case (a case the sweep
  opened before the follow-up arrived is resolved by it);
- delighted: a visit with a delighted experience -> no case;
- just now: a complaint ten minutes ago, inside the grace period -> no case yet.
(Not "a complaint then a compliment": a case opened between the two stays open, by design, and
one opened after would not exist; the outcome would depend on the sweep's timing.)
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests

# A story's episodes: (kind, age, experience). Ages are before the scenario's start.
STORIES: dict[str, list[tuple[str, timedelta, int | None]]] = {
    "complained": [("complaint", timedelta(hours=3), -2)],
    "soured": [("visit", timedelta(hours=5), 1), ("complaint", timedelta(hours=3), -1)],
    "recovered": [("complaint", timedelta(hours=4), -1), ("recovery", timedelta(hours=3), None)],
    "delighted": [("visit", timedelta(hours=3), 2)],
    "just now": [("complaint", timedelta(minutes=10), -2)],
}
OPEN_CASE_STORIES = frozenset({"complained", "soured"})
RETRY_STATUSES = frozenset({409, 429})  # in progress (a concurrent retry), throttled


@dataclass
class Write:
    """One logical write and what happened to each attempt at it."""

    key: str
    card: str
    story: str
    body: dict[str, Any]
    attempts: list[str] = field(default_factory=list)  # "201", "503-db", "ConnectionError", …
    acknowledged: bool = False
    status: int | None = None  # the last HTTP status received
    seconds: list[float] = field(default_factory=list)  # each attempt's, to an answer or error
    replayed: bool = False  # acknowledged with the first attempt's stored response
    episode_id: int | None = None  # the id the acknowledgement named

    @property
    def final(self) -> str:
        return self.attempts[-1] if self.attempts else "not sent"


def plan_writes(*, customers: int, start: datetime, rng: random.Random) -> list[Write]:
    """The writes for `customers` customers, stories dealt round-robin, in an order that makes
    a customer's episodes arrive in any order: scattered for half the customers with two, side
    by side (so two tills send them at about the same time, racing to create the customer) for
    the other half."""
    names = list(STORIES)
    groups = []
    for n in range(customers):
        writes: list[Write] = []
        story = names[n % len(names)]
        card = f"F{n:05d}"
        for number, (kind, age, experience) in enumerate(STORIES[story]):
            key = uuid.uuid4().hex
            body: dict[str, Any] = {
                "customer": {"card": card},
                "kind": kind,
                "occurred_at": (start - age).isoformat(),
                "summary": f"ledger {key}",
            }
            if experience is not None:
                body["experience"] = experience
            if (n + number) % 2:
                body["external_id"] = key
            writes.append(Write(key=key, card=card, story=story, body=body))
        rng.shuffle(writes)
        groups.append(writes)
    together = [group for group in groups[::2] if len(group) > 1]
    kept_together = {id(group) for group in together}
    scattered = [write for group in groups if id(group) not in kept_together for write in group]
    rng.shuffle(scattered)
    for group in together:
        at = rng.randrange(len(scattered) + 1)
        scattered[at:at] = group
    return scattered


def classify(response: requests.Response) -> str:
    if response.status_code == 503 and response.headers.get("Retry-After"):
        return "503-db"
    return str(response.status_code)


class Tills:
    """`tills` threads working through the writes at about `rate` writes a second in total,
    each retrying one write until it is acknowledged or `give_up_after` seconds have passed."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        writes: list[Write],
        rate: float,
        tills: int = 4,
        give_up_after: float = 90,
        max_retry_after: float = 5,
    ) -> None:
        self.url = f"{base_url}/api/v1/episodes/"
        self.api_key = api_key
        self.writes = writes
        self.interval = tills / rate
        self.tills = tills
        self.give_up_after = give_up_after
        self.max_retry_after = max_retry_after
        self.stop = threading.Event()
        self._next = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self) -> None:
        for n in range(self.tills):
            thread = threading.Thread(target=self._till, name=f"till-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def join(self, timeout: float) -> bool:
        """Wait for every write to be done; False (and the tills told to stop) on timeout."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            self.stop.set()
            for thread in self._threads:
                thread.join(15)
            return False
        return True

    def _take(self) -> Write | None:
        with self._lock:
            if self._next >= len(self.writes):
                return None
            write = self.writes[self._next]
            self._next += 1
            return write

    def _till(self) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Api-Key {self.api_key}"
        try:
            while not self.stop.is_set():
                write = self._take()
                if write is None:
                    return
                started = time.monotonic()
                self._send(session, write)
                self.stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        except BaseException as exc:  # reported by the run, not lost in a thread
            self.errors.append(exc)
        finally:
            session.close()

    def _send(self, session: requests.Session, write: Write) -> None:
        deadline = time.monotonic() + self.give_up_after
        backoff = 0.1
        while not self.stop.is_set() and time.monotonic() < deadline:
            wait = backoff
            sent = time.monotonic()
            try:
                response = session.post(
                    self.url,
                    json=write.body,
                    headers={"Idempotency-Key": write.key},
                    timeout=(3, 15),
                )
            except requests.RequestException as exc:
                write.seconds.append(time.monotonic() - sent)
                write.attempts.append(type(exc).__name__)
                # The connection may have been a dead pooled one: start afresh.
                session.close()
            else:
                write.seconds.append(time.monotonic() - sent)
                write.status = response.status_code
                write.attempts.append(classify(response))
                if 200 <= response.status_code < 300:
                    write.acknowledged = True
                    write.replayed = response.headers.get("Idempotent-Replayed") == "true"
                    write.episode_id = response.json().get("id")
                    return
                if response.status_code < 500 and response.status_code not in RETRY_STATUSES:
                    return  # refused: a bug on one side or the other, reported, not retried
                retry_after = response.headers.get("Retry-After", "")
                if retry_after.isdigit():
                    wait = min(float(retry_after), self.max_retry_after)
            self.stop.wait(wait)
            backoff = min(backoff * 2, 2.0)


@dataclass
class LedgerCounts:
    sent: int
    acknowledged: int
    attempts: int
    db_503: int  # 503 with Retry-After: a lost database, expected under faults and retried
    other_5xx: int
    connection_errors: int
    refused: Counter[str]  # final 4xx other than those retried: should never happen
    slowest: float  # the slowest attempt (to an answer or an error), in seconds
    replayed: int  # writes acknowledged by a replay: an earlier attempt had been stored


def count_ledger(writes: list[Write]) -> LedgerCounts:
    outcomes = Counter(attempt for write in writes for attempt in write.attempts)
    other_5xx = sum(n for what, n in outcomes.items() if what.isdigit() and int(what) >= 500)
    errors = sum(n for what, n in outcomes.items() if not what[0].isdigit())
    refused = Counter(
        write.final
        for write in writes
        if write.status is not None
        and 400 <= write.status < 500
        and write.status not in RETRY_STATUSES
    )
    return LedgerCounts(
        sent=sum(bool(write.attempts) for write in writes),
        acknowledged=sum(write.acknowledged for write in writes),
        attempts=sum(outcomes.values()),
        db_503=outcomes["503-db"],
        other_5xx=other_5xx,
        connection_errors=errors,
        refused=refused,
        slowest=max((t for write in writes for t in write.seconds), default=0.0),
        replayed=sum(write.replayed for write in writes),
    )

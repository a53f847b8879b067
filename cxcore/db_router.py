"""Read replicas: which reads may go to one, and read-your-writes.

`DATABASE_REPLICA_URL` (cxcore.settings) adds the aliases `replica`, `replica_2`, …; without it
there are none and every query goes to `default`, as before. A read goes to a replica only
inside `replica_reads()` (a context manager and a decorator), put at the entry point of work
that tolerates a replica's lag of a fraction of a second: the insights, the owner queue and its
export, the exports of a customer's data, the daily digests, the reconcile's candidate scan.
Everything else, and every write, stays on the primary.

Read-your-writes, per unit of work (a request: `cxcore.middleware.ReplicaUnitMiddleware`; outside
a request, the outermost `replica_reads()`, so each task run is a unit of its own):
- once the unit has written (the router chose a database for a write, or the primary ran a
  statement that writes), every later read of the unit goes to the primary;
- reads inside `transaction.atomic()` on the primary stay on it (they see its uncommitted rows,
  and a locking read — `select_for_update` — is routed as a write anyway);
- a browser that posted something is pinned to the primary for REPLICA_PIN_SECONDS by a cookie,
  so the page a redirect-after-post shows has the owner's own change.
Writes to the tables of PRIMARY_APPS (sessions, users, memberships, keys, lockouts, the cache
table) do not pin: those are never read from a replica, so the session save or the API key's
last-used stamp of a request does not send its insights to the primary.

A unit reads from one replica, picked at random at its first replica read, so its reads agree
with each other as far as one replica's replay does.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

# Authorization and its bookkeeping are read from the primary: a revoked key, a removed member
# or a lockout counts at once, whatever a replica has replayed. `django_cache` is the database
# cache (the throttle counters), which reads and writes the same rows.
PRIMARY_APPS = frozenset(
    {"auth", "contenttypes", "sessions", "admin", "axes", "accounts", "django_cache"}
)
REPLICA_ALIAS = re.compile(r"replica(_[0-9]+)?")
PIN_COOKIE = "comeback_primary"
T = TypeVar("T")

# SQL that writes nothing; anything else run on the primary inside a unit counts as a write.
_READ_ONLY_SQL = ("SELECT", "SAVEPOINT", "RELEASE", "ROLLBACK", "SHOW", "SET", "EXPLAIN")
_WRITTEN_TABLE = re.compile(r'\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)', re.IGNORECASE)


@dataclass
class Unit:
    """One request or task: whether it reads from the primary from now on, and its replica."""

    primary: bool = False
    replica: str | None = None
    scopes: int = 0  # replica_reads() blocks entered and not yet left


_unit: ContextVar[Unit | None] = ContextVar("comeback_db_unit", default=None)


def replica_aliases() -> tuple[str, ...]:
    """The configured replicas (`replica`, `replica_2`, …), none without DATABASE_REPLICA_URL."""
    return tuple(alias for alias in connections.settings if REPLICA_ALIAS.fullmatch(alias))


@contextmanager
def replica_reads() -> Iterator[None]:
    """Reads inside may be served by a replica (decorator or `with`; nestable).

    Only for reads whose results are shown or sent, never for reads that decide a write: a
    replica may lag the primary by a fraction of a second. Inside a request the unit is the
    request's; elsewhere this block is the unit.
    """
    unit = _unit.get()
    if unit is None:
        if not replica_aliases():
            yield  # no replica: nothing to route, nothing to watch
            return
        with unit_of_work(Unit(scopes=1)):
            yield
        return
    unit.scopes += 1
    try:
        yield
    finally:
        unit.scopes -= 1


def replica_stream(chunks: Iterable[T]) -> Iterator[T]:
    """`chunks` produced inside `replica_reads()`: for a streamed response, whose reads happen
    after its view has returned."""
    with replica_reads():
        yield from chunks


@contextmanager
def unit_of_work(unit: Unit) -> Iterator[Unit]:
    """Make `unit` the current unit of work (a request's, or a task's) while inside."""
    _watch_primary_writes()
    token = _unit.set(unit)
    try:
        yield unit
    finally:
        _unit.reset(token)


def within_unit(unit: Unit, chunks: Iterable[Any]) -> Iterator[Any]:
    """Iterate `chunks` with `unit` current during each step: a streamed response is produced
    after its request's middleware has returned, and must still read as its request."""
    iterator = iter(chunks)
    while True:
        with unit_of_work(unit):
            chunk = next(iterator, _END)
        if chunk is _END:
            return
        yield chunk


_END = object()


def pin_to_primary() -> None:
    """From now on the current unit reads from the primary (its browser is pinned)."""
    unit = _unit.get()
    if unit is not None:
        unit.primary = True


def current_unit() -> Unit | None:
    return _unit.get()


class ReplicaRouter:
    """Writes to the primary; reads to the unit's replica only inside `replica_reads()`."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        unit = _unit.get()
        if (
            unit is None
            or not unit.scopes
            or unit.primary
            or model._meta.app_label in PRIMARY_APPS
            or connections[DEFAULT_DB_ALIAS].in_atomic_block
        ):
            return DEFAULT_DB_ALIAS
        if unit.replica is None:
            replicas = replica_aliases()
            if not replicas:
                return DEFAULT_DB_ALIAS
            unit.replica = random.choice(replicas)
        return unit.replica

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        unit = _unit.get()
        if unit is not None and model._meta.app_label not in PRIMARY_APPS:
            unit.primary = True  # read-your-writes: the rest of the unit reads the primary
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        ours = {DEFAULT_DB_ALIAS, *replica_aliases()}
        if obj1._state.db in ours and obj2._state.db in ours:
            return True  # the same data: a replica is a copy of the primary
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS  # a replica replays the primary's schema


def writes(sql: str) -> bool:
    """Whether a statement run on the primary counts as a write of the unit: it is not a read,
    and it does not only touch the tables of PRIMARY_APPS."""
    head = sql.lstrip()[:10].upper()
    if head.startswith(_READ_ONLY_SQL):
        return False
    match = _WRITTEN_TABLE.match(sql)
    return match is None or match.group(1) not in _primary_tables()


@cache
def _primary_tables() -> frozenset[str]:
    tables = {
        model._meta.db_table
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label in PRIMARY_APPS
    }
    tables.update(  # the database cache's table (CACHE_URL=db://TABLE, the default)
        str(conf["LOCATION"])
        for conf in settings.CACHES.values()
        if str(conf.get("BACKEND", "")).endswith("DatabaseCache")
    )
    return frozenset(tables)


def _note_writes(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """On the primary's connection: a statement that writes pins the current unit (the ORM's
    writes reach the router as well; raw SQL only this)."""
    unit = _unit.get()
    if unit is not None and not unit.primary and isinstance(sql, str) and writes(sql):
        unit.primary = True
    return execute(sql, params, many, context)


def _watch_primary_writes() -> None:
    # Once per connection object (one a thread): kept across reconnects, a no-op outside units.
    wrappers = connections[DEFAULT_DB_ALIAS].execute_wrappers
    if _note_writes not in wrappers:
        wrappers.append(_note_writes)

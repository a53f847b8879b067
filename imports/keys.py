"""Foreign keys checked a chunk at a time, set-based, in place of a trigger call a row.

PostgreSQL checks a foreign key with a trigger per inserted row: a query with its own executor
start-up that takes a key-share lock on the referenced row. For an import's new rows that is
much of a backend's time (each new customer and each of its identifiers point at the same
organization, each identifier at a customer the same statement created; a million episodes at
the same few thousand customers and locations) and it proves nothing the import cannot prove
once a chunk. So, when the database lets it, the import takes those key-share locks itself, in
one statement, and turns the triggers off for the statements that insert the rows (`SET LOCAL
session_replication_role = replica`, the mode logical replication applies changes in; no
other session is affected and the constraints stay on the tables). A referenced row the import
locked cannot be deleted before it commits; the rows it created are invisible to every other
transaction until then.

Only around inserts of rows pointing at what is locked here, or was locked or created by the
same transaction; never around an UPDATE or DELETE (the referenced side's triggers would be off
too), never where a row points at anything else (tests/imports/test_keys.py pins the keys).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from psycopg.pq import TransactionStatus


# PostgreSQL 15 lets a superuser grant SET on the parameter to the app's role:
#   GRANT SET ON PARAMETER session_replication_role TO comeback;
def _may_set_sql(cursor: Any) -> str:
    """Whether this role may turn the triggers off, as SQL (older servers: superusers only)."""
    if cursor.db.pg_version >= 150000:
        return "has_parameter_privilege('session_replication_role', 'SET')"
    return "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"


@contextmanager
def key_triggers_skipped(
    cursor: Any,
    *,
    organization_id: int,
    batch_id: int | None = None,
    references: Sequence[tuple[str, str]] = (),
) -> Iterator[bool]:
    """In a transaction, around statements that insert rows pointing at the organization, the
    batch, rows the same transaction created or locked FOR KEY SHARE already, and the rows of
    each (table, ids query) of `references`: lock those FOR KEY SHARE, as their triggers
    would (one statement with the rest), then turn the
    triggers off for the block. Yields False (the triggers left on: the same result, more
    slowly) where the role may not, or where a referenced row is gone (the triggers then
    report it as ever)."""
    wanted = [("accounts_organization", "SELECT %s", [organization_id])]
    if batch_id is not None:
        wanted.append(("imports_importbatch", "SELECT %s", [batch_id]))
    wanted.extend((table, ids, []) for table, ids in references)
    if not _lock_and_skip(cursor, wanted):
        yield False
        return
    try:
        yield True
    finally:
        # After a database error the transaction (or its savepoint) rolls back, the setting
        # with it; only a healthy transaction is set back here (nothing to mask an exception).
        status = cursor.cursor.connection.info.transaction_status
        if status == TransactionStatus.INTRANS and not cursor.db.needs_rollback:
            cursor.execute("SET LOCAL session_replication_role = origin")


def _lock_and_skip(cursor: Any, wanted: Sequence[tuple[str, str, list[Any]]]) -> bool:
    """One statement (each round trip waits for the import's busy Python threads): lock FOR
    KEY SHARE each row of each (table, ids query, params), and where the role may and every
    id the queries give was there to lock, turn the triggers off. True if it did."""
    ctes, checks, params = [], [], []
    for n, (table, ids, query_params) in enumerate(wanted):
        ctes.append(
            f"w{n} AS (SELECT DISTINCT w.id FROM ({ids}) w(id) WHERE w.id IS NOT NULL), "
            # In primary-key order, as every lock of rows is taken.
            f"l{n} AS (SELECT t.id FROM {table} t WHERE t.id IN (SELECT id FROM w{n}) "
            "ORDER BY t.id FOR KEY SHARE)"
        )
        checks.append(f"(SELECT count(*) FROM w{n}) = (SELECT count(*) FROM l{n})")
        params.extend(query_params)
    cursor.execute(
        f"WITH {', '.join(ctes)} SELECT CASE WHEN {_may_set_sql(cursor)} AND {' AND '.join(checks)}"
        " THEN set_config('session_replication_role', 'replica', true) END",
        params,
    )
    return cursor.fetchone()[0] == "replica"

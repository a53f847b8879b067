"""Foreign keys checked a chunk at a time, set-based, in place of a trigger call a row.

PostgreSQL checks a foreign key with a trigger per inserted row: a query with its own executor
start-up that takes a key-share lock on the referenced row. For an import's new rows that is
much of a backend's time (each new customer and each of its identifiers point at the same
organization, each identifier at a customer the same statement created; a million episodes at
the same few thousand customers and locations) and it proves nothing the import cannot prove
once a chunk. So, when the database lets it, the import takes those key-share locks itself, one
statement a table, and turns the triggers off for the statements that insert the rows (`SET
LOCAL session_replication_role = replica`, the mode logical replication applies changes in; no
other session is affected and the constraints stay on the tables). A referenced row the import
locked cannot be deleted before it commits; the rows it created are invisible to every other
transaction until then.

Only around inserts of rows pointing at what is locked here or created by the same
transaction; never where a row points at anything else.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connection
from psycopg.pq import TransactionStatus

# PostgreSQL 15 lets a superuser grant SET on the parameter to the app's role:
#   GRANT SET ON PARAMETER session_replication_role TO comeback;
_MAY_SET = """
    SELECT CASE WHEN current_setting('server_version_num')::int >= 150000
                THEN has_parameter_privilege('session_replication_role', 'SET')
                ELSE (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) END
"""


def may_skip_key_triggers() -> bool:
    """Whether this connection's role may turn the triggers off for its transactions (a
    superuser, or granted SET on the parameter). Asked each time: one query a chunk part."""
    with connection.cursor() as cursor:
        cursor.execute(_MAY_SET)
        return bool(cursor.fetchone()[0])


@contextmanager
def key_triggers_skipped(
    cursor: Any,
    *,
    organization_id: int,
    batch_id: int | None = None,
    references: Sequence[tuple[str, str]] = (),
) -> Iterator[bool]:
    """In a transaction, around statements that insert rows pointing at the organization, the
    batch, rows the same transaction created and the rows of each (table, ids query) of
    `references`: lock all those FOR KEY SHARE, as their triggers would, then turn the
    triggers off for the block. Yields False (the triggers left on: the same result, more
    slowly) where the role may not, or where a referenced row is gone (the triggers then
    report it as ever)."""
    if not may_skip_key_triggers() or not _lock(
        cursor,
        [("accounts_organization", "SELECT %s", [organization_id])]
        + ([("imports_importbatch", "SELECT %s", [batch_id])] if batch_id is not None else [])
        + [(table, ids, []) for table, ids in references],
    ):
        yield False
        return
    cursor.execute("SET LOCAL session_replication_role = replica")
    try:
        yield True
    finally:
        # After an error the transaction (or its savepoint) rolls back, the setting with it.
        if cursor.cursor.connection.info.transaction_status != TransactionStatus.INERROR:
            cursor.execute("SET LOCAL session_replication_role = origin")


def _lock(cursor: Any, wanted: Sequence[tuple[str, str, list[Any]]]) -> bool:
    """Lock FOR KEY SHARE each row of each (table, ids query, params); True when every id the
    queries give was there to lock."""
    for table, ids, params in wanted:
        cursor.execute(
            f"""
            WITH wanted AS (SELECT DISTINCT w.id FROM ({ids}) w(id) WHERE w.id IS NOT NULL),
            locked AS (SELECT t.id FROM {table} t WHERE t.id IN (SELECT id FROM wanted)
                       FOR KEY SHARE)
            SELECT (SELECT count(*) FROM wanted) = (SELECT count(*) FROM locked)
            """,
            params,
        )
        if not cursor.fetchone()[0]:
            return False
    return True

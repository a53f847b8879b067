"""Whether an import is running for an organization, asked without waiting for it.

A customers import holds IMPORT_LOCK for its whole run (a session lock, across its chunks); a
history import holds HISTORY_LOCK for its one transaction. What deletes customers (an undo, a
merge) must not run beside either: it would wait for the whole file on the import's key-share
locks, or delete a customer the next chunk has just matched. It asks here and is refused at
once instead.
"""

from __future__ import annotations

from django.db import connection

from imports.models import HISTORY_LOCK, IMPORT_LOCK


def no_import_running(organization_id: int) -> bool:
    """Take, for this transaction, a share of both imports' locks: True when no import of
    this organization holds either (one starting meanwhile waits for this transaction, which
    is short), False when one does."""
    if connection.vendor != "postgresql":
        return True  # the embedded database runs one thing at a time
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_xact_lock_shared(%s, %s)"
            " AND pg_try_advisory_xact_lock_shared(%s, %s)",
            [IMPORT_LOCK, organization_id, HISTORY_LOCK, organization_id],
        )
        return bool(cursor.fetchone()[0])

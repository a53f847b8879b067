"""Whether an import is running for an organization, asked without waiting for it.

A customers import holds IMPORT_LOCK for its whole run (a session lock, across its chunks); a
history import holds HISTORY_LOCK for its one transaction. What deletes customers (an undo, a
merge) must not run beside either: it would wait for the whole file on the import's key-share
locks, or delete a customer the next chunk has just matched. It asks here first and is refused
at once instead. Lock order: these advisory locks before any row lock.
"""

from __future__ import annotations

from django.db import connection

from accounts.errors import ConflictError
from imports.models import HISTORY_LOCK, IMPORT_LOCK


class ImportRunning(ConflictError):
    default_code = "import_running"


def refuse_while_importing(organization_id: int, *, doing: str, alone: bool = False) -> None:
    """Take, for this transaction, a share of both imports' locks (one starting meanwhile
    waits for this transaction, which is short), or raise ImportRunning (a 409 naming
    `doing`). `alone` takes the customers import's lock whole, so two such transactions of
    one organization (two undos) do not run side by side either."""
    if connection.vendor != "postgresql":
        return  # the embedded database runs one thing at a time
    first = "pg_try_advisory_xact_lock" if alone else "pg_try_advisory_xact_lock_shared"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {first}(%s, %s) AND pg_try_advisory_xact_lock_shared(%s, %s)",
            [IMPORT_LOCK, organization_id, HISTORY_LOCK, organization_id],
        )
        if not cursor.fetchone()[0]:
            raise ImportRunning(
                f"An import {'or an undo ' if alone else ''}is running for this organization: "
                f"{doing} once it has finished.",
                field="organization",
            )

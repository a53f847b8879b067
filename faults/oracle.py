"""What the database holds for a run, in SQL written apart from the code under test.

`stored_by_key` finds each ledger write's rows by the key in its summary; `expected_open_cases`
is the oracle: DESIGN.md's definition of a recovery case, computed from the episodes alone
(not from the narrative state on the customer row, nor from cxcore.rules): the customer's last
experience is negative, the organization's grace period has passed since it, and no follow-up
(a recovery or outreach episode) came at or after it. It is exact for the load's stories
(faults.load), which avoid the one order-dependent case (a better experience after a case
opened, which by design does not close it).
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from accounts.models import Organization
from cxcore.models import Episode
from recovery.models import CaseKind, CaseStatus, RecoveryCase

EPISODES = Episode._meta.db_table
ORGANIZATIONS = Organization._meta.db_table
CASES = RecoveryCase._meta.db_table
# DESIGN.md: "Follow-up: a recovery or outreach episode after the negative one" (written out
# here, not imported, so the oracle does not share the vocabulary it checks).
FOLLOW_UP_KINDS = ["recovery", "outreach"]


def stored_by_key(organization_id: int) -> dict[str, list[int]]:
    """{ledger key: its rows' ids}; rows without a ledger key are listed under ""."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT coalesce(substring(summary FROM '^ledger ([0-9a-f]+)$'), ''), array_agg(id)
            FROM {EPISODES} WHERE organization_id = %s GROUP BY 1
            """,
            [organization_id],
        )
        return dict(cursor.fetchall())


def expected_open_cases(organization_id: int, *, now: datetime) -> set[int]:
    """The customers who must have an open recovery case at `now`, from their episodes."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH last_experience AS (
                SELECT DISTINCT ON (customer_id) customer_id, experience, occurred_at
                FROM {EPISODES}
                WHERE organization_id = %(org)s AND experience IS NOT NULL
                ORDER BY customer_id, occurred_at DESC, id DESC
            )
            SELECT last.customer_id
            FROM last_experience last, {ORGANIZATIONS} org
            WHERE org.id = %(org)s
              AND last.experience < 0
              AND last.occurred_at + org.recovery_grace_period <= %(now)s
              AND NOT EXISTS (
                  SELECT 1 FROM {EPISODES} follow_up
                  WHERE follow_up.customer_id = last.customer_id
                    AND follow_up.kind = ANY(%(follow_ups)s)
                    AND follow_up.occurred_at >= last.occurred_at
              )
            """,
            {"org": organization_id, "now": now, "follow_ups": FOLLOW_UP_KINDS},
        )
        return {row[0] for row in cursor.fetchall()}


def open_cases(organization_id: int) -> list[int]:
    """The customers with an open recovery case, once per case (a repeat would be a bug)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT customer_id FROM {CASES} "
            "WHERE organization_id = %s AND kind = %s AND status = %s",
            [organization_id, CaseKind.RECOVERY.value, CaseStatus.OPEN.value],
        )
        return [row[0] for row in cursor.fetchall()]


def customers_by_card(organization_id: int) -> dict[str, int]:
    from cxcore.models import Identifier

    return dict(
        Identifier.objects.filter(organization_id=organization_id, kind="card").values_list(
            "value", "customer_id"
        )
    )


def terminate_stack_backends(app_name_prefix: str, *, busy_only: bool = False) -> int:
    """pg_terminate_backend on the stack's own connections to this database, and only those;
    `busy_only`: those running a statement or inside a transaction (a request in flight)."""
    busy = "AND state <> 'idle'" if busy_only else ""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            f"AND application_name LIKE %s {busy}",
            [app_name_prefix + "%"],
        )
        row = cursor.fetchone()
        return int(row[0]) if row else 0


def busy_client_ports(application_name: str, *, just_committed: bool = False) -> list[int]:
    """The client ports of that application's backends inside a transaction or a statement,
    or (`just_committed`) those whose COMMIT finished in the last 50 ms: the write is stored
    and its response not sent yet, perhaps."""
    state = (
        "state = 'idle' AND query = 'COMMIT' AND state_change > now() - interval '50 ms'"
        if just_committed
        else "state <> 'idle'"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT client_port FROM pg_stat_activity WHERE datname = current_database() "
            f"AND application_name = %s AND client_port IS NOT NULL AND {state}",
            [application_name],
        )
        return [row[0] for row in cursor.fetchall()]

"""Folding a history import's new episodes into the touched customers' narratives, set-based.

A history import is a backfill: a hundred thousand customers with ten new episodes each. The
per-episode fold every live write uses (`NarrativeState.apply` in cxcore.rules, through
`cxcore.services.episodes._fold_into_narratives`) read a million episodes into Python and
built a model instance per customer: a third of the import's time. Here PostgreSQL folds them
in one pass, and Python computes only the due times, with the rules' own `due_times`.

It relies on what the import writes (imports.history): visits and refund incidents whose
experience is unknown and that are no follow-ups. Folding such episodes moves only the counts,
the spend, the first-seen time and the visit span, and each of those is a count, sum, min or
max (NarrativeState.apply is order-free for the same reason), so one aggregate per customer
gives what folding them one by one gives. The last experience, last negative and last
follow-up cannot change. The usual order is recomputed, from the customer's newest item lists
as a rebuild reads them, where it can change: when a new episode names an item, or when the
customer has a usual order that nameless new lines may push out of the window (from no usual
order, nameless lines can only take named ones away: it stays none).

A customer whose existing episode got new items (`rebuild`) is rebuilt from their episodes
instead, as the spend of an episode already folded in changed.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from django.db import connection

from accounts.models import Organization
from cxcore.rules import (
    MAX_TOTAL_SPEND,
    CaseMarks,
    DuePolicy,
    NarrativeState,
    due_times,
    usual_order_from,
)
from cxcore.services.episodes import _rebuild_batch, _recent_item_lists_of
from cxcore.vocabulary import FOLLOW_UP_KINDS, VISIT_KINDS, EpisodeKind

logger = logging.getLogger(__name__)

# The kinds an import writes; none of them is a follow-up, which the fold below relies on.
IMPORTED_KINDS = frozenset({EpisodeKind.VISIT, EpisodeKind.INCIDENT})
if IMPORTED_KINDS & FOLLOW_UP_KINDS:  # pragma: no cover - a vocabulary change must revisit this
    raise ImportError("imports.history_fold folds no follow-ups: revisit it")

REBUILD_BATCH = 2_000
USUAL_ORDER_BATCH = 2_000

# What spend_of (cxcore.rules) makes of an episode's items, in SQL: price × quantity (no or
# zero quantity counts as one), items without a price count as nothing.
SPEND_OF_ITEMS = """coalesce((
    SELECT sum((x->>'price')::numeric
               * coalesce(nullif(nullif(x->>'quantity', ''), '0')::integer, 1))
    FROM jsonb_array_elements({items}) x WHERE coalesce(x->>'price', '') <> ''
), 0)"""
# Whether any of the items has a name (usual_order_from counts only named ones).
NAMES_AN_ITEM = (
    "EXISTS (SELECT 1 FROM jsonb_array_elements({items}) x "
    "WHERE btrim(coalesce(x->>'name', '')) <> '')"
)

_MARKS = CaseMarks.field_names()

# Per touched customer: what the new episodes add up to (a customer whose existing episode
# changed is marked to be rebuilt).
_TOUCHED = """
    CREATE TEMP TABLE import_history_touched AS
    SELECT customer_id,
           bool_or(what <> %(created)s) AS rebuild,
           count(*) FILTER (WHERE what = %(created)s) AS episodes,
           coalesce(sum(spend) FILTER (WHERE what = %(created)s), 0) AS spend,
           min(occurred_at) FILTER (WHERE what = %(created)s) AS first_at,
           count(*) FILTER (WHERE what = %(created)s AND kind = ANY(%(visits)s)) AS visits,
           min(occurred_at) FILTER (WHERE what = %(created)s AND kind = ANY(%(visits)s))
               AS first_visit,
           max(occurred_at) FILTER (WHERE what = %(created)s AND kind = ANY(%(visits)s))
               AS last_visit,
           coalesce(bool_or(named) FILTER (WHERE what = %(created)s), false) AS named
    FROM import_history_new GROUP BY customer_id
"""
# The state after the fold, as a statement's expressions over the row `c` and its `t`: every
# field is a count, sum, min or max (least/greatest skip nulls, as the fold skips "none yet").
_FOLDED = {
    "episode_count": "c.episode_count + t.episodes",
    "total_spend": "least(c.total_spend + t.spend, %(max_spend)s)",
    "first_seen_at": "least(c.first_seen_at, t.first_at)",
    "visit_count": "c.visit_count + t.visits",
    "first_visit_at": "least(c.first_visit_at, t.first_visit)",
    "last_visit_at": "greatest(c.last_visit_at, t.last_visit)",
}
_VISITS = ("visit_count", "first_visit_at", "last_visit_at")
# What due_times reads of the state besides the folded visits; the fold leaves these as they are.
_DUE_INPUTS = [
    "last_experience",
    "last_experience_at",
    "last_negative_at",
    "last_follow_up_at",
    "usual_order",
]

# Every touched customer, locked in primary-key order (as every writer locks them, so two
# cannot deadlock), with what the due times depend on after the fold.
_LOCK_AND_READ = f"""
    SELECT c.id, t.rebuild, t.named,
           {", ".join(_FOLDED[name] for name in _VISITS)},
           {", ".join(f"c.{name}" for name in _DUE_INPUTS)},
           {", ".join(f"c.{name}" for name in _MARKS)}
    FROM cxcore_customer c JOIN import_history_touched t ON t.customer_id = c.id
    ORDER BY c.id
    FOR NO KEY UPDATE OF c
"""

# The fold, and from Python the due times and (where it was read again) the usual order.
_WRITE = f"""
    UPDATE cxcore_customer c SET
        {", ".join(f"{name} = {expression}" for name, expression in _FOLDED.items())},
        usual_order = coalesce(v.usual_order, c.usual_order),
        recovery_due_at = v.recovery_due_at, care_due_at = v.care_due_at, updated_at = %(now)s
    FROM import_history_touched t,
         unnest(%(ids)s::bigint[], %(orders)s::text[], %(recovery)s::timestamptz[],
                %(care)s::timestamptz[]) AS v(id, usual_order, recovery_due_at, care_due_at)
    WHERE t.customer_id = v.id AND c.id = v.id
"""


def fold_new_episodes(*, organization: Organization, created: str, now: datetime) -> int:
    """Bring every customer in the TEMP table `import_history_new` (id, customer_id, what,
    kind, occurred_at, spend, named: what the import created or changed) up to date: state
    and due times. `created` is the `what` of a created episode; any other `what` is a change
    to an existing episode, and its customer is rebuilt. Returns how many customers."""
    policy = DuePolicy.of(organization)
    params: dict[str, Any] = {
        "created": created,
        "visits": sorted(VISIT_KINDS),
        "max_spend": MAX_TOTAL_SPEND,
        "now": now,
    }
    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS import_history_touched")
        cur.execute(_TOUCHED, params)
        cur.execute("ANALYZE import_history_touched")
        cur.execute(_LOCK_AND_READ)
        rows = cur.fetchall()
    logger.debug(
        "history fold: %d customers locked and read in %.2f s",
        len(rows),
        time.perf_counter() - started,
    )
    rebuilt = [row[0] for row in rows if row[1]]
    for start in range(0, len(rebuilt), REBUILD_BATCH):
        _rebuild_batch(rebuilt[start : start + REBUILD_BATCH])
    started = time.perf_counter()
    marks_at = 6 + len(_DUE_INPUTS)
    folded: list[tuple[int, NarrativeState, CaseMarks]] = []
    reorder: list[int] = []
    for row in rows:
        if row[1]:
            continue
        visits, first_visit, last_visit = row[3:6]
        state = NarrativeState(
            visit_count=visits,
            first_visit_at=first_visit,
            last_visit_at=last_visit,
            **dict(zip(_DUE_INPUTS, row[6:marks_at], strict=True)),
        )
        marks = CaseMarks(**dict(zip(_MARKS, row[marks_at:], strict=True)))
        folded.append((row[0], state, marks))
        if row[2] or state.usual_order:
            reorder.append(row[0])
    orders: dict[int, str] = {}
    for start in range(0, len(reorder), USUAL_ORDER_BATCH):
        chunk = reorder[start : start + USUAL_ORDER_BATCH]
        lists = _recent_item_lists_of(chunk)
        orders.update((customer_id, usual_order_from(lists[customer_id])) for customer_id in chunk)
    ids: list[int] = []
    new_orders: list[str | None] = []
    recovery: list[datetime | None] = []
    care: list[datetime | None] = []
    for customer_id, state, marks in folded:
        if customer_id in orders:
            state.usual_order = orders[customer_id]
        # The state here holds what due_times reads; the rest is folded by the UPDATE.
        recovery_due, care_due = due_times(state, marks, policy)
        ids.append(customer_id)
        new_orders.append(orders.get(customer_id))
        recovery.append(recovery_due)
        care.append(care_due)
    if ids:
        with connection.cursor() as cur:
            cur.execute(
                _WRITE,
                {**params, "ids": ids, "orders": new_orders, "recovery": recovery, "care": care},
            )
            cur.execute("DROP TABLE import_history_touched")
    logger.debug("history fold: written in %.2f s", time.perf_counter() - started)
    return len(rows)

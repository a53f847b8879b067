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

from collections.abc import Sequence
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
_FOLDED = [
    "episode_count",
    "total_spend",
    "first_seen_at",
    "visit_count",
    "first_visit_at",
    "last_visit_at",
]
_KEPT = [name for name in NarrativeState.field_names() if name not in _FOLDED]

# Every touched customer, locked in primary-key order (as every writer locks them, so two
# cannot deadlock), with their state after the new episodes are folded in.
_FOLD = f"""
    WITH touched AS (
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
    )
    SELECT c.id, t.rebuild, t.named,
           c.episode_count + t.episodes,
           least(c.total_spend + t.spend, %(max_spend)s),
           least(c.first_seen_at, t.first_at),
           c.visit_count + t.visits,
           least(c.first_visit_at, t.first_visit),
           greatest(c.last_visit_at, t.last_visit),
           {", ".join(f"c.{name}" for name in _KEPT)},
           {", ".join(f"c.{name}" for name in _MARKS)}
    FROM cxcore_customer c JOIN touched t ON t.customer_id = c.id
    ORDER BY c.id
    FOR NO KEY UPDATE OF c
"""

_WRITE = f"""
    UPDATE cxcore_customer c SET
        {", ".join(f"{name} = v.{name}" for name in _FOLDED)},
        usual_order = v.usual_order, recovery_due_at = v.recovery_due_at,
        care_due_at = v.care_due_at, updated_at = %s
    FROM unnest(
        %s::bigint[], %s::integer[], %s::numeric[], %s::timestamptz[], %s::integer[],
        %s::timestamptz[], %s::timestamptz[], %s::text[], %s::timestamptz[], %s::timestamptz[]
    ) AS v(id, {", ".join(_FOLDED)}, usual_order, recovery_due_at, care_due_at)
    WHERE c.id = v.id
"""


def fold_new_episodes(*, organization: Organization, created: str, now: datetime) -> int:
    """Bring every customer in the TEMP table `import_history_new` (id, customer_id, what,
    kind, occurred_at, spend, named: what the import created or changed) up to date: state
    and due times. `created` is the `what` of a created episode; any other `what` is a change
    to an existing episode, and its customer is rebuilt. Returns how many customers."""
    policy = DuePolicy.of(organization)
    with connection.cursor() as cur:
        cur.execute(
            _FOLD,
            {
                "created": created,
                "visits": sorted(VISIT_KINDS),
                "max_spend": MAX_TOTAL_SPEND,
            },
        )
        rows = cur.fetchall()
    rebuilt = [row[0] for row in rows if row[1]]
    for start in range(0, len(rebuilt), REBUILD_BATCH):
        _rebuild_batch(rebuilt[start : start + REBUILD_BATCH])
    folded: list[tuple[int, NarrativeState, CaseMarks]] = []
    reorder: list[int] = []
    names = [*_FOLDED, *_KEPT]
    marks_at = 3 + len(names)
    for row in rows:
        if row[1]:
            continue
        state = NarrativeState(**dict(zip(names, row[3:marks_at], strict=True)))
        marks = CaseMarks(**dict(zip(_MARKS, row[marks_at : marks_at + len(_MARKS)], strict=True)))
        folded.append((row[0], state, marks))
        if row[2] or state.usual_order:
            reorder.append(row[0])
    orders: dict[int, str] = {}
    for start in range(0, len(reorder), USUAL_ORDER_BATCH):
        chunk = reorder[start : start + USUAL_ORDER_BATCH]
        lists = _recent_item_lists_of(chunk)
        orders.update((customer_id, usual_order_from(lists[customer_id])) for customer_id in chunk)
    for customer_id, state, _ in folded:
        if customer_id in orders:
            state.usual_order = orders[customer_id]
    _write(folded, policy, now=now)
    return len(rows)


def _write(
    folded: Sequence[tuple[int, NarrativeState, CaseMarks]],
    policy: DuePolicy,
    *,
    now: datetime,
) -> None:
    """One UPDATE for every folded customer: the state's folded fields, the usual order and
    the due times (cxcore.rules.due_times: the one definition of them)."""
    columns: list[list[Any]] = [[] for _ in range(10)]
    for customer_id, state, marks in folded:
        recovery_due, care_due = due_times(state, marks, policy)
        values = (
            customer_id,
            state.episode_count,
            state.total_spend,
            state.first_seen_at,
            state.visit_count,
            state.first_visit_at,
            state.last_visit_at,
            state.usual_order,
            recovery_due,
            care_due,
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    if folded:
        with connection.cursor() as cur:
            cur.execute(_WRITE, [now, *columns])

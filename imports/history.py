"""Importing a cafe's history from Square's transactions and item-details exports.

The file is streamed, in one transaction: a reader thread parses the rows
(imports.history_formats) a chunk ahead, each chunk is COPYed into a TEMP table and written
set-based at once (the database's work on a chunk overlaps the parsing of the next), so memory
stays flat whatever the file's size; the batch row shows progress between chunks (through a
connection of its own). What the file says:

- a completed payment is a visit episode (source `import`, external_id = Transaction ID) at
  the mapped location, its spend carried by one nameless item line (as the live Square
  connector does, so a payment alone never becomes anyone's "usual order");
- the item-details export gives the same Transaction ID's episode its items (name, quantity,
  unit price): they feed the usual order. Items first or transactions first, the episode is
  the same one; items replace only the nameless spend line, never items already there;
- a refund is an incident episode whose experience is left unknown: a *candidate* negative.
  A refund is often a slip fixed on the spot, and an import may carry years of them, so it
  does not open recovery cases by itself; its summary says so and staff confirm it by setting
  the experience (cxcore.services.correct_experience), which opens the case as usual.

The customer is the one whose `pos_id` identifier is Square's Customer ID (the customers
export creates them): a row whose customer is not imported yet is rejected with that reason,
so importing the customers first and the history again picks it up (re-imports add nothing:
an episode is written only for an external id not imported before, under its unique index).
Rows without a customer (walk-ins) are counted and skipped.

Finally the new episodes are folded into each touched customer's narrative state and due
times (the fold every bulk write uses; a customer whose existing episode got its items is
rebuilt), so a regular who is already late gets a care due time and the next sweep opens
the case.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts.errors import InvalidInput
from accounts.models import Location, Organization, TeamAction, User
from accounts.services import record_team_event
from cxcore.models import Episode, Identifier
from cxcore.services.episodes import _rebuild_batch
from cxcore.spreadsheets import spreadsheet_safe
from cxcore.vocabulary import EpisodeKind, IdentifierKind, Source
from imports.copy_text import escaped
from imports.history_fold import NAMES_AN_ITEM, SPEND_OF_ITEMS, fold_new_episodes
from imports.history_formats import (
    SQUARE_ITEMS,
    SQUARE_TRANSACTIONS,
    BadValue,
    FileRefused,
    ItemLine,
    Rejection,
    Skipped,
    TransactionRow,
    aware,
    day_first_in,
    item_from,
    read_rows,
    transaction_from,
)
from imports.keys import key_triggers_skipped
from imports.models import (
    HISTORY_LOCK,
    ImportBatch,
    ImportedKind,
    ImportedObject,
    ImportKind,
    ImportStatus,
)
from imports.services import (
    claimed_batch,
    count_lines,
    prefetched,
    side_connection,
    upload_dir,
)

logger = logging.getLogger(__name__)
CHUNK_ROWS = 20_000
TEMP_BUFFERS = "256MB"
# For the write's sorts and hashes (DISTINCT ON over the file's rows), in its transaction only:
# a million rows sort in ~90 MB, so they stay in memory; a larger file spills to disk.
WORK_MEM = "128MB"
REBUILD_BATCH = 2_000
FIRST_REJECTIONS = 20
FUTURE_TOLERANCE = timedelta(minutes=10)
# Undo's record of the items an import gave an episode it did not create (an ImportedObject
# kind that imports.undo takes back; "previous" holds the items before).
ITEMS_SET = "items_set"
EPISODE_CREATED = ImportedKind.EPISODE_CREATED.value
EPISODE_RANGE = ImportedKind.EPISODE_RANGE.value

__all__ = [
    "FileRefused",
    "HistoryResult",
    "create_history_batch",
    "import_history",
    "run_history_batch",
]


@dataclass
class HistoryResult:
    rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    # (line, reason), sorted by line: every rejection (the page offers them as a CSV).
    rejections: list[tuple[int, str]] = field(default_factory=list)
    customers: int = 0  # customers whose narrative state was brought up to date

    @property
    def first_rejections(self) -> list[dict[str, Any]]:
        return [{"line": ln, "reason": why} for ln, why in self.rejections[:FIRST_REJECTIONS]]


@contextmanager
def _timed(phase: str) -> Iterator[None]:
    """Log how long a phase took (DEBUG): where an import's time goes, for whoever tunes it."""
    started = time.perf_counter()
    yield
    logger.debug("history import: %s took %.2f s", phase, time.perf_counter() - started)


class _Locations:
    """Square's Location column → our location, by name or slug (case-insensitive); with a
    location given, every row is at it."""

    def __init__(self, organization: Organization, forced: Location | None) -> None:
        self.forced = forced
        active = list(Location.objects.filter(organization=organization, is_active=True))
        self.by_key: dict[str, Location] = {}
        for loc in active:
            self.by_key[loc.slug.casefold()] = loc
            self.by_key[" ".join(loc.name.split()).casefold()] = loc
        self.only = active[0] if len(active) == 1 else None
        self.default_zone = organization.time_zone
        self.seen: dict[str, Location] = {}

    def find(self, name: str) -> Location:
        if self.forced is not None:
            return self.forced
        found = self.seen.get(name)  # a file names a few locations a million times
        if found is None:
            found = self.seen[name] = self._find(name)
        return found

    def _find(self, name: str) -> Location:
        if not name:
            if self.only is not None:
                return self.only
            raise BadValue("Location is blank: give the location to import into")
        found = self.by_key.get(" ".join(name.split()).casefold())
        if found is None:
            raise BadValue(
                f"Location {name[:60]!r} is not one of this organization's active locations"
            )
        return found


# --- staging ---------------------------------------------------------------------------------

_STAGE_COLUMNS = {
    SQUARE_TRANSACTIONS: (
        "line integer, is_refund boolean, external_id text, occurred_at timestamptz, "
        "amount numeric(12,2), pos_id text, location_id bigint, summary text"
    ),
    SQUARE_ITEMS: (
        "line integer, external_id text, occurred_at timestamptz, pos_id text, "
        "location_id bigint, name text, quantity integer, price numeric(12,2)"
    ),
}
STAGE = "import_history_stage"
CHUNK = "import_history_chunk"


def refund_summary(row: TransactionRow) -> str:
    text = f"Refunded {row.amount_text or row.amount} in Square"
    if row.reason:
        text += f": {row.reason}"
    return text + " — was something wrong? Set the experience if so (imported as a candidate)."


def _staged(
    row: TransactionRow | ItemLine, locations: _Locations, now: datetime
) -> tuple[Any, ...]:
    location = locations.find(row.location)
    occurred_at = aware(row.when, default_zone=location.time_zone or locations.default_zone)
    if occurred_at > now + FUTURE_TOLERANCE:
        raise BadValue("Date and Time are in the future")
    if isinstance(row, TransactionRow):
        return (
            row.line,
            row.is_refund,
            row.external_id,
            occurred_at,
            row.amount,
            row.customer_id,
            location.pk,
            refund_summary(row) if row.is_refund else "",
        )
    return (
        row.line,
        row.transaction_id,
        occurred_at,
        row.customer_id,
        location.pk,
        row.name,
        row.quantity,
        row.price,
    )


def _parse(
    handle: TextIO,
    fmt: str,
    *,
    organization: Organization,
    locations: _Locations,
    now: datetime,
    result: HistoryResult,
) -> Iterator[tuple[Any, ...]]:
    """The rows to stage; rejections and skips are counted in `result` as they are read.
    The header is checked before this returns (FileRefused)."""
    parse = transaction_from if fmt == SQUARE_TRANSACTIONS else item_from
    day_first = day_first_in(organization.country)
    try:
        records = read_rows(handle, fmt)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise _refused(exc) from None

    def staged() -> Iterator[tuple[Any, ...]]:
        try:
            for line, cells in records:
                result.rows += 1
                row = parse(line, cells, day_first=day_first)
                if isinstance(row, Rejection):
                    result.rejections.append((row.line, row.reason))
                elif isinstance(row, Skipped):
                    result.counts[row.why] = result.counts.get(row.why, 0) + 1
                else:
                    try:
                        yield _staged(row, locations, now)
                    except BadValue as exc:
                        result.rejections.append((line, str(exc)))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise _refused(exc) from None

    return staged()


def _refused(exc: Exception) -> FileRefused:
    if isinstance(exc, UnicodeDecodeError):
        return FileRefused("The file is not UTF-8 text.")
    return FileRefused(f"The file is not a CSV file: {exc}.")


def _copy_id(value: int | None) -> str:
    return "\\N" if value is None else str(value)


def _transaction_line(row: tuple[Any, ...], customer_id: int | None) -> str:
    """A staged transaction as a line of COPY text (the columns of _STAGE_COLUMNS, then the
    customer where it is known already)."""
    line, is_refund, external_id, occurred_at, amount, pos_id, location_id, summary = row
    return (
        f"{line}\t{'t' if is_refund else 'f'}\t{escaped(external_id)}\t"
        f"{occurred_at.isoformat()}\t{amount}\t{escaped(pos_id)}\t"
        f"{location_id}\t{escaped(summary)}\t{_copy_id(customer_id)}\n"
    )


def _item_line(row: tuple[Any, ...], customer_id: int | None) -> str:
    """A staged item line as a line of COPY text."""
    line, external_id, occurred_at, pos_id, location_id, name, quantity, price = row
    return (
        f"{line}\t{escaped(external_id)}\t{occurred_at.isoformat()}\t"
        f"{escaped(pos_id)}\t{location_id}\t{escaped(name)}\t"
        f"{quantity}\t{price}\t{_copy_id(customer_id)}\n"
    )


class _Customers:
    """Square Customer ID → our customer, for the file's rows: each id is looked up once, and
    its customer locked FOR KEY SHARE as it is found, in the import's transaction (what the
    episodes' foreign-key trigger would lock), so later chunks point at it without asking
    again. The reader thread fills in the ids found so far; the writer looks up the rest of
    a chunk's before it is written, so an id that arrives mid-file (a customers import)
    counts from the next chunk on. An id not found is asked again in each chunk it is in."""

    # Past this many, start over (the ids are asked and locked again): memory stays bounded
    # whatever the file's number of customers.
    MOST = 250_000

    def __init__(self, organization_id: int) -> None:
        self.organization_id = organization_id
        self.found: dict[str, int] = {}

    def look_up(self, cursor: Any, pos_ids: set[str]) -> dict[str, int]:
        """Find and lock the customers of these Square ids; returns those found."""
        if not pos_ids:
            return {}
        if len(self.found) > self.MOST:
            self.found.clear()  # (the same dict: the reader holds its .get)
        cursor.execute(
            _FIND_AND_LOCK_CUSTOMERS, {"org": self.organization_id, "values": sorted(pos_ids)}
        )
        found = dict(cursor.fetchall())
        self.found.update(found)
        return found


def _chunks(
    rows: Iterator[tuple[Any, ...]], fmt: str, result: HistoryResult, customers: _Customers
) -> Iterator[tuple[str, int, int, set[str]]]:
    """(COPY text, rows in it, file rows read so far, its Square ids whose customer is not
    known yet) for each chunk of CHUNK_ROWS rows."""
    as_text, pos_at = (_transaction_line, 5) if fmt == SQUARE_TRANSACTIONS else (_item_line, 3)
    known = customers.found.get  # once, not a method call a row
    lines: list[str] = []
    unknown: set[str] = set()
    for row in rows:
        customer_id = known(row[pos_at])
        if customer_id is None:
            unknown.add(row[pos_at])
        lines.append(as_text(row, customer_id))
        if len(lines) == CHUNK_ROWS:
            yield "".join(lines), len(lines), result.rows, unknown
            lines, unknown = [], set()
    yield "".join(lines), len(lines), result.rows, unknown


def set_temp_buffers() -> None:
    """A million staged rows are ~150 MB: with the default 8 MB of temp buffers they were
    written out and read back. PostgreSQL takes this only before the session's first
    temporary table, so a worker's later imports keep the first's. Outside a transaction."""
    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(f"SET temp_buffers = '{TEMP_BUFFERS}'")
    except DatabaseError:
        pass


def _stage_and_insert(
    rows: Iterator[tuple[Any, ...]],
    fmt: str,
    params: dict[str, Any],
    progress: Callable[[int], None] | None,
    result: HistoryResult,
) -> int:
    """COPY the rows into CHUNK a chunk at a time, parsed one chunk ahead in a thread; a
    transactions chunk's new episodes are inserted at once, so the database's work on a
    chunk (its customers' lookup, its inserts) overlaps the parsing of the next. Every
    chunk joins STAGE, which the writes after the last one read (counts, rejections, an
    items export's episodes). In the import's transaction. Returns how many were staged."""
    staged = 0
    customers = _Customers(params["org"])
    with connection.cursor() as cur:
        for table in (STAGE, CHUNK):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
            cur.execute(
                f"CREATE TEMP TABLE {table} ({_STAGE_COLUMNS[fmt]}, customer_id bigint) "
                "ON COMMIT DROP"
            )
        cur.execute("DROP TABLE IF EXISTS import_history_new")
        cur.execute(
            "CREATE TEMP TABLE import_history_new (id bigint, customer_id bigint, "
            "previous jsonb, what text, kind text, occurred_at timestamptz, spend numeric, "
            "named boolean) ON COMMIT DROP"
        )
        for text, count, read, unknown in prefetched(_chunks(rows, fmt, result, customers)):
            if count:
                found = customers.look_up(cur, unknown)
                cur.execute(f"TRUNCATE {CHUNK}")
                with cur.copy(f"COPY {CHUNK} FROM STDIN") as copy:
                    copy.write(text)
                if found:
                    cur.execute(_FILL_CUSTOMERS, {"found": json.dumps(found)})
                if fmt == SQUARE_TRANSACTIONS:
                    # The new episodes point at the organization, the chunk's locations and
                    # its customers (locked as they were found): locked here, not checked
                    # a row at a time.
                    with key_triggers_skipped(
                        cur, organization_id=params["org"], references=_CHUNK_REFERENCES
                    ):
                        cur.execute(_INSERT_TRANSACTIONS, params)
                cur.execute(f"INSERT INTO {STAGE} SELECT * FROM {CHUNK}")
                staged += count
            if progress is not None:
                progress(read)
        cur.execute(f"ANALYZE {STAGE}")
    return staged


# --- the set-based writes --------------------------------------------------------------------

# The customers of a chunk's Square ids not found before, locked as the episodes' foreign key
# would lock them (primary-key order, as every lock of rows is taken): each row's customer is
# decided once, as its chunk is written, and the episodes, the rejections and the counts all
# read that one answer, though a customers import may add Square ids while a long file is read.
_FIND_AND_LOCK_CUSTOMERS = """
    SELECT i.value, c.id
    FROM cxcore_identifier i JOIN cxcore_customer c ON c.id = i.customer_id
    WHERE i.organization_id = %(org)s AND i.kind = 'pos_id' AND i.value = ANY(%(values)s)
    ORDER BY c.id
    FOR KEY SHARE OF c
"""

# The ids just found, given to the chunk's rows the reader could not fill in: one pass over
# the chunk, each row's id a binary search of the object's keys. (A join with the ids as an
# array was planned as a loop over the chunk for each id: minutes for a large file.)
_FILL_CUSTOMERS = f"""
    UPDATE {CHUNK} SET customer_id = (%(found)s::jsonb ->> pos_id)::bigint
    WHERE customer_id IS NULL AND %(found)s::jsonb ? pos_id
"""

_UNKNOWN_CUSTOMERS = f"""
    SELECT s.line, s.pos_id FROM {STAGE} s WHERE s.customer_id IS NULL ORDER BY s.line
"""

# A chunk's rows with their customer, one per external id (the first line wins: a file that
# repeats a row imports it once, and a repeat in a later chunk finds the first's episode).
# A chunk's rows with a known customer: the only ones that become episodes.
_WITH_CUSTOMER = f"{CHUNK} WHERE customer_id IS NOT NULL"

_KNOWN = f"""
    SELECT DISTINCT ON (s.external_id) s.*
    FROM (SELECT * FROM {_WITH_CUSTOMER}) s
    ORDER BY s.external_id, s.line
"""

_EPISODE_COLUMNS = (
    "organization_id, customer_id, location_id, kind, occurred_at, recorded_at, source, "
    "external_id, summary, touchpoints, items, experience, experience_source, rating_scale, "
    "rating_value"
)

# What the narrative fold needs of a new episode's items (imports.history_fold).
_SPEND = SPEND_OF_ITEMS.format(items="items")
_NAMED = NAMES_AN_ITEM.format(items="items")
# A payment's episode has at most its one nameless spend line (built below): its price is the
# spend, and it names nothing. (The general expressions cost a second of a million rows.)
_PAYMENT_SPEND = "coalesce((items->0->>'price')::numeric, 0)"


# What a chunk's new episodes point at besides the organization and their customers, which
# _FIND_AND_LOCK_CUSTOMERS locked (imports.keys).
_CHUNK_REFERENCES = (("accounts_location", f"SELECT location_id FROM {_WITH_CUSTOMER}"),)

# Returns (transactions with a known customer, episodes created).
_INSERT_TRANSACTIONS = f"""
    WITH known AS MATERIALIZED ({_KNOWN}),
    ins AS (
        INSERT INTO cxcore_episode ({_EPISODE_COLUMNS})
        SELECT %(org)s, k.customer_id, k.location_id,
               CASE WHEN k.is_refund THEN %(incident)s ELSE %(visit)s END,
               k.occurred_at, %(now)s, %(source)s, k.external_id, k.summary, '[]'::jsonb,
               CASE WHEN NOT k.is_refund AND k.amount > 0
                    THEN jsonb_build_array(jsonb_build_object(
                        'name', '', 'quantity', 1, 'price', k.amount::text))
                    ELSE '[]'::jsonb END,
               NULL, '', '', NULL
        FROM known k
        -- The unique index decides, row by row, what was imported before (or by another
        -- writer meanwhile). An anti-join was faster on a fresh organization, but as its
        -- episodes arrive a chunk at a time its statistics lag, and the planner looped over
        -- all of them for every row.
        ON CONFLICT DO NOTHING
        RETURNING id, customer_id, kind, occurred_at, items
    ),
    kept AS (
        INSERT INTO import_history_new
        SELECT id, customer_id, NULL, '{EPISODE_CREATED}', kind, occurred_at, {_PAYMENT_SPEND},
               false
        FROM ins
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM known), (SELECT count(*) FROM kept)
"""

# Items grouped into one list per transaction, in the file's order.
_ITEM_LISTS = f"""
    SELECT k.external_id,
           (array_agg(k.customer_id ORDER BY k.line))[1] AS customer_id,
           (array_agg(k.location_id ORDER BY k.line))[1] AS location_id,
           min(k.occurred_at) AS occurred_at,
           min(k.line) AS line,
           jsonb_agg(jsonb_build_object(
               'name', k.name, 'quantity', k.quantity, 'price', k.price::text) ORDER BY k.line
           ) AS items
    FROM {STAGE} k
    WHERE k.customer_id IS NOT NULL
    GROUP BY k.external_id
"""

# An episode (ours) that has only its nameless spend line takes the items; one that has named
# items keeps them, so importing the same file again changes nothing.
_SET_ITEMS = f"""
    WITH lists AS ({_ITEM_LISTS}),
    old AS (
        SELECT e.id, e.customer_id, e.items AS old_items, l.items AS new_items
        FROM cxcore_episode e JOIN lists l
          ON e.organization_id = %(org)s AND e.source = %(source)s
         AND e.external_id = l.external_id
        WHERE NOT EXISTS (
            SELECT 1 FROM jsonb_array_elements(e.items) x WHERE coalesce(x->>'name', '') <> ''
        )
        FOR NO KEY UPDATE OF e
    ),
    upd AS (
        UPDATE cxcore_episode e SET items = old.new_items FROM old WHERE e.id = old.id
        RETURNING e.id
    )
    INSERT INTO import_history_new (id, customer_id, previous, what)
    SELECT old.id, old.customer_id, jsonb_build_object('items', old.old_items), '{ITEMS_SET}'
    FROM old JOIN upd ON upd.id = old.id
"""

_INSERT_ITEM_EPISODES = f"""
    WITH lists AS ({_ITEM_LISTS}),
    ins AS (
        INSERT INTO cxcore_episode ({_EPISODE_COLUMNS})
        SELECT %(org)s, l.customer_id, l.location_id, %(visit)s, l.occurred_at, %(now)s,
               %(source)s, l.external_id, '', '[]'::jsonb, l.items, NULL, '', '', NULL
        FROM lists l
        ORDER BY l.line
        ON CONFLICT DO NOTHING
        RETURNING id, customer_id, kind, occurred_at, items
    )
    INSERT INTO import_history_new
    SELECT id, customer_id, NULL, '{EPISODE_CREATED}', kind, occurred_at, {_SPEND}, {_NAMED}
    FROM ins
"""


def _params(organization: Organization, now: datetime) -> dict[str, Any]:
    return {
        "org": organization.pk,
        "now": now,
        "source": Source.IMPORT,
        "visit": EpisodeKind.VISIT,
        "incident": EpisodeKind.INCIDENT,
    }


def _write(fmt: str, *, params: dict[str, Any], batch_id: int | None, now: datetime) -> dict:
    """After the last chunk: an items export's episodes, the undo records, the counts."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT count(DISTINCT external_id) FROM {STAGE} WHERE customer_id IS NOT NULL"
        )
        (known_ids,) = cur.fetchone()
        if fmt == SQUARE_ITEMS:  # (a transactions export's episodes are in by now)
            cur.execute(_SET_ITEMS, params)
            cur.execute(_INSERT_ITEM_EPISODES, params)
        if batch_id is not None:
            # Items given to others' episodes one row each (undo restores each one's list);
            # the episodes created as one range (HISTORY_LOCK keeps other imports out of it).
            cur.execute(
                "INSERT INTO imports_importedobject (batch_id, kind, customer_id, object_id, "
                "previous) SELECT %s, what, customer_id, id, previous FROM import_history_new "
                "WHERE what <> %s",
                [batch_id, EPISODE_CREATED],
            )
            cur.execute(
                "INSERT INTO imports_importedobject (batch_id, kind, customer_id, object_id, "
                "previous) SELECT %s, %s, 0, NULL, jsonb_build_object('first', min(id), "
                "'last', max(id), 'recorded_at', %s::text) FROM import_history_new "
                "WHERE what = %s HAVING count(*) > 0",
                [batch_id, EPISODE_RANGE, now.isoformat(), EPISODE_CREATED],
            )
        cur.execute("SELECT what, count(*) FROM import_history_new GROUP BY what")
        written = dict(cur.fetchall())
        cur.execute("SELECT count(*) FROM import_history_new WHERE kind = %(incident)s", params)
        (refunds,) = cur.fetchone()
    return {
        "known_ids": known_ids,
        "episodes": written.get(EPISODE_CREATED, 0),
        "items_set": written.get(ITEMS_SET, 0),
        "refunds": refunds,
    }


# --- the embedded database (SQLite): the same rules, row by row in Python --------------------


def uses_copy() -> bool:
    """PostgreSQL takes the COPY and set-based path; the embedded SQLite the plain one."""
    return connection.vendor == "postgresql"


def _write_plain(
    staged: list[tuple[Any, ...]],
    fmt: str,
    *,
    organization: Organization,
    batch_id: int | None,
    now: datetime,
) -> dict[str, Any]:
    """What `_write` and `fold_new_episodes` do, without COPY or PostgreSQL's SQL: for the
    embedded database of `make run`, whose files are small. Same outcomes, same counts."""
    pos_index = 5 if fmt == SQUARE_TRANSACTIONS else 3
    owners: dict[str, int] = {}
    pos_ids = sorted({row[pos_index] for row in staged})
    for start in range(0, len(pos_ids), 500):
        owners.update(
            Identifier.objects.for_org(organization)
            .filter(kind=IdentifierKind.POS_ID, value__in=pos_ids[start : start + 500])
            .values_list("value", "customer_id")
        )
    rejections = [
        (
            row[0],
            f"Customer ID {row[pos_index]!r} is not imported: import the customers export first",
        )
        for row in staged
        if row[pos_index] not in owners
    ]
    known = sorted((row for row in staged if row[pos_index] in owners), key=lambda row: row[0])
    external_index = 2 if fmt == SQUARE_TRANSACTIONS else 1
    groups: dict[str, list[tuple[Any, ...]]] = {}
    for row in known:
        groups.setdefault(row[external_index], []).append(row)
    existing = {
        e.external_id: e
        for e in Episode.objects.for_org(organization).filter(
            source=Source.IMPORT, external_id__in=list(groups)
        )
    }
    created: list[Episode] = []
    changed: list[tuple[Episode, list]] = []
    for external_id, rows in groups.items():
        first = rows[0]
        if fmt == SQUARE_TRANSACTIONS:
            _, is_refund, _, occurred_at, amount, pos_id, location_id, summary = first
            kind = EpisodeKind.INCIDENT if is_refund else EpisodeKind.VISIT
            items = (
                [{"name": "", "quantity": 1, "price": str(amount)}]
                if not is_refund and amount > 0
                else []
            )
        else:
            _, _, occurred_at, pos_id, location_id, *_ = first
            occurred_at = min(row[2] for row in rows)
            kind, summary = EpisodeKind.VISIT, ""
            items = [{"name": r[5], "quantity": r[6], "price": str(r[7])} for r in rows]
        episode = existing.get(external_id)
        if episode is None:
            created.append(
                Episode(
                    organization=organization,
                    customer_id=owners[pos_id],
                    location_id=location_id,
                    kind=kind,
                    occurred_at=occurred_at,
                    source=Source.IMPORT,
                    external_id=external_id,
                    summary=summary,
                    items=items,
                )
            )
        elif fmt == SQUARE_ITEMS and not any(str(i.get("name") or "") for i in episode.items):
            changed.append((episode, episode.items))
            episode.items = items
    Episode.objects.bulk_create(created)
    Episode.objects.bulk_update([episode for episode, _ in changed], ["items"])
    if batch_id is not None:
        records = [
            ImportedObject(
                batch_id=batch_id,
                kind=ITEMS_SET,
                customer_id=e.customer_id,
                object_id=e.pk,
                previous={"items": old},
            )
            for e, old in changed
        ]
        if created:
            # The embedded database has one writer at a time: no one else's ids fall in it.
            ids = [e.pk for e in created]
            records.append(
                ImportedObject(
                    batch_id=batch_id,
                    kind=EPISODE_RANGE,
                    customer_id=0,
                    previous={"first": min(ids), "last": max(ids)},
                )
            )
        ImportedObject.objects.bulk_create(records)
    customer_ids = sorted({e.customer_id for e in created} | {e.customer_id for e, _ in changed})
    for start in range(0, len(customer_ids), REBUILD_BATCH):
        _rebuild_batch(customer_ids[start : start + REBUILD_BATCH])
    return {
        "known_rows": len(known),  # (the PostgreSQL path derives it from the staged rows)
        "known_ids": len(groups),
        "episodes": len(created),
        "items_set": len(changed),
        "refunds": sum(1 for e in created if e.kind == EpisodeKind.INCIDENT),
        "rejections": rejections,
        "customer_ids": customer_ids,
    }


# --- the import ------------------------------------------------------------------------------


def import_history(
    *,
    organization: Organization,
    path: str | Path,
    fmt: str,
    location: Location | None = None,
    dry_run: bool = False,
    batch: ImportBatch | None = None,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> HistoryResult:
    """Import one Square transactions or item-details export; returns what became of its rows.

    A dry run does all of it in a transaction it rolls back: the counts are exact and nothing
    is written. `progress(rows_read)` is called after each chunk (the command's bar, the
    batch row). With a batch, what it created is recorded for undo and the team history
    gets its line, in the transaction of the writes. Raises FileRefused if the file is not
    the format at all.
    """
    if fmt not in (SQUARE_TRANSACTIONS, SQUARE_ITEMS):
        raise FileRefused(f"Unknown history format {fmt!r}.")
    if location is not None and location.organization_id != organization.pk:
        raise FileRefused("No such location.")
    now = now or timezone.now()
    result = HistoryResult()
    locations = _Locations(organization, location)
    with Path(path).open(encoding="utf-8-sig", newline="") as handle:
        rows = _parse(
            handle, fmt, organization=organization, locations=locations, now=now, result=result
        )
        set_based = uses_copy()
        if set_based:
            set_temp_buffers()
        else:
            staged = list(rows)  # the embedded database's path: a laptop's small files
            if progress is not None:
                progress(result.rows)
        with _timed("the transaction, commit included"), transaction.atomic():
            batch_id = batch.pk if batch is not None and not dry_run else None
            if connection.vendor == "postgresql":
                with connection.cursor() as cur:
                    cur.execute(
                        "SELECT pg_advisory_xact_lock(%s, %s)", [HISTORY_LOCK, organization.pk]
                    )
            if set_based:
                with connection.cursor() as cur:
                    cur.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
                    # The commit does not wait for its WAL to reach the disk: a crash in
                    # that instant loses the whole import or none of it (never part), and
                    # importing the file again is the remedy. This transaction only.
                    cur.execute("SET LOCAL synchronous_commit = off")
                    # Each chunk's foreign keys are checked as it is written (by one lock
                    # statement where the role may, imports.keys; else by the triggers),
                    # beside the parsing of the next, not all at the commit on one core (a
                    # third of the import's time then). Their key-share locks on the
                    # customers, locations and the organization then last for the whole
                    # file: every lock the app takes on those rows to edit them is FOR NO
                    # KEY UPDATE, which they do not block (tests/imports/test_history_import.py).
                    cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
                params = _params(organization, now)
                with _timed("parse, COPY and a transactions export's episodes"):
                    staged_rows = _stage_and_insert(rows, fmt, params, progress, result)
                unknown = len(result.rejections)
                _reject_unknown_customers(organization, result)
                unknown = len(result.rejections) - unknown
                with _timed("items, undo records and counts"):
                    written = _write(fmt, params=params, batch_id=batch_id, now=now)
                written["known_rows"] = staged_rows - unknown
                with _timed("narratives"):
                    result.customers = fold_new_episodes(
                        organization=organization, created=EPISODE_CREATED, now=now
                    )
            else:
                written = _write_plain(
                    staged, fmt, organization=organization, batch_id=batch_id, now=now
                )
                result.rejections.extend(written["rejections"])
                result.rejections.sort()
                result.customers = len(written["customer_ids"])
            _tally(result, written, fmt)
            if dry_run:
                transaction.set_rollback(True)
            elif batch is not None:
                record_team_event(
                    organization=organization,
                    actor=batch.created_by,
                    action=TeamAction.IMPORTED,
                    subject_label=batch.file_name,
                    batch=batch.pk,
                    kind=ImportKind.HISTORY,
                    format=fmt,
                    rows=result.counts["rows"],
                    episodes=result.counts["episodes"],
                    rejected=result.counts["rejected"],
                )
    return result


def _reject_unknown_customers(organization: Organization, result: HistoryResult) -> None:
    with connection.cursor() as cur:
        cur.execute(_UNKNOWN_CUSTOMERS, {"org": organization.pk})
        for line, pos_id in cur.fetchall():
            result.rejections.append(
                (line, f"Customer ID {pos_id!r} is not imported: import the customers export first")
            )
    result.rejections.sort()


def _tally(result: HistoryResult, written: dict, fmt: str) -> None:
    created, items_set, known_ids = written["episodes"], written["items_set"], written["known_ids"]
    result.counts.update(
        {
            "rows": result.rows,
            "episodes": created,
            "refunds": written["refunds"],
            "items_set": items_set,
            # Transactions whose episode (and items) were there already: an earlier import.
            "already_imported": known_ids - created - items_set,
            # Rows repeating an earlier row's Transaction ID (item lines: the other lines of
            # a transaction are no repeats, so this counts payments only).
            "repeated_rows": written["known_rows"] - known_ids if fmt == SQUARE_TRANSACTIONS else 0,
            "rejected": len(result.rejections),
        }
    )


# --- a batch: the page's and the command's way in -------------------------------------------


def create_history_batch(
    *,
    organization: Organization,
    path: str | Path,
    file_name: str,
    fmt: str,
    location: Location | None = None,
    dry_run: bool = False,
    created_by: User | None = None,
) -> ImportBatch:
    """A queued history batch for a stored file (run it with `run_history_batch`)."""
    if fmt not in (SQUARE_TRANSACTIONS, SQUARE_ITEMS):
        raise InvalidInput(f"{fmt!r} is not a history format.", field="format")
    stored = Path(path)
    return ImportBatch.objects.create(
        organization=organization,
        location=location,
        kind=ImportKind.HISTORY,
        format=fmt,
        file_name=file_name[:255],
        file_size=stored.stat().st_size,
        dry_run=dry_run,
        upload_path=str(stored),
        rows_total=count_lines(stored),
        created_by=created_by,
    )


def run_history_batch(
    *,
    batch: ImportBatch,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> ImportBatch:
    """Run a queued history batch over its stored file; returns the batch, done or failed.
    The rejected rows are written beside the upload as a CSV (`rejected_path`)."""
    now = now or timezone.now()
    with claimed_batch(batch, now) as claimed:
        if not claimed:  # a duplicate task delivery while it runs, or a finished batch
            batch.refresh_from_db()
            return batch
        return _run_claimed(batch, progress, now)


def _run_claimed(
    batch: ImportBatch, progress: Callable[[int], None] | None, now: datetime
) -> ImportBatch:
    """The claimed batch's run: the import, its rejected rows, the batch's end."""

    # The rows read, where the page reads them: on PostgreSQL the import is one transaction,
    # so its progress goes through a connection of its own.
    side = side_connection()

    def report(done: int) -> None:
        if side is None:
            ImportBatch.objects.filter(pk=batch.pk).update(rows_done=done)
        else:
            try:
                with side.cursor() as cur:
                    cur.execute(
                        "UPDATE imports_importbatch SET rows_done = %s WHERE id = %s",
                        [done, batch.pk],
                    )
            except DatabaseError:  # a progress bar that lags never fails the import
                logger.warning("batch %s: progress not written", batch.pk, exc_info=True)
        if progress is not None:
            progress(done)

    try:
        result = import_history(
            organization=batch.organization,
            path=batch.upload_path,
            fmt=batch.format,
            location=batch.location,
            dry_run=batch.dry_run,
            batch=batch,
            progress=report,
            now=now,
        )
    except (FileRefused, OSError) as exc:
        _fail(batch, str(exc))
        return batch
    except Exception:
        # Whatever it was, the page must not show "running" forever; the worker logs it.
        _fail(batch, "The import stopped on an error; nothing of it was written.")
        raise
    finally:
        if side is not None:
            side.close()
    rejected_path = ""
    if result.rejections:
        # Ours, under IMPORT_UPLOAD_DIR, as the customer import's: never beside a file the
        # command was given (the operator's directory), and the tidy deletes it in time.
        rejected_path = str(upload_dir() / f"rejected-{batch.pk}.csv")
        try:
            write_rejected_csv(batch.upload_path, result.rejections, rejected_path)
        except OSError:
            # The import is committed; a directory we cannot write to loses only the download.
            logger.warning("batch %s: could not write %s", batch.pk, rejected_path, exc_info=True)
            rejected_path = ""
    ImportBatch.objects.filter(pk=batch.pk).update(
        status=ImportStatus.DONE,
        counts=result.counts,
        first_rejections=result.first_rejections,
        rows_done=result.rows,
        rows_total=result.rows,
        rejected_path=rejected_path,
        finished_at=timezone.now(),
    )
    batch.refresh_from_db()
    return batch


def _fail(batch: ImportBatch, error: str) -> None:
    ImportBatch.objects.filter(pk=batch.pk).update(
        status=ImportStatus.FAILED, error=error[:2000], finished_at=timezone.now()
    )
    batch.refresh_from_db()


def write_rejected_csv(path: str | Path, rejections: list[tuple[int, str]], out: str | Path) -> int:
    """The rejected rows of `path`, as they were, with their line and reason first (what the
    upload page offers to download and fix). Returns how many were written."""
    reasons = dict(rejections)
    written = 0
    with (
        Path(path).open(encoding="utf-8-sig", newline="") as handle,
        Path(out).open("w", encoding="utf-8", newline="") as sink,
    ):
        reader = csv.reader(handle)
        writer = csv.writer(sink)
        header = next(reader, [])
        writer.writerow(["Line", "Reason", *header])
        end = reader.line_num
        for cells in reader:
            start, end = end + 1, reader.line_num
            if start in reasons:
                writer.writerow([start, reasons[start], *map(spreadsheet_safe, cells)])
                written += 1
    return written

"""The writes of one chunk of customer rows: who each row is, and what changes.

On PostgreSQL the chunk is COPY'd into TEMP staging tables and written set-based: match the
known identifiers, create the new people (ids drawn from the sequence up front), insert their
identifiers, append memos, set names and consent, and record every change as an
ImportedObject row (what undo takes back) and a CustomerEdit per changed card. On SQLite the
same rules run row by row through identify_many (`apply_chunk_plain`).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction

from cxcore.models import Customer, CustomerEdit, EditKind, Identifier, IdentifierKind
from cxcore.services.customers import identify_many
from imports.copy_text import NULL, copy_field, escaped
from imports.formats import NOTES_MAX, CustomerRow
from imports.keys import key_triggers_skipped
from imports.models import ImportBatch, ImportedKind, ImportedObject


@dataclass
class Tally:
    rows: int = 0
    new: int = 0
    matched: int = 0
    phone_only: int = 0
    pos_id_only: int = 0
    rejected: int = 0
    identifiers_added: int = 0
    notes_appended: int = 0
    consent_set: int = 0
    names_set: int = 0
    first_rejections: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            name: getattr(self, name)
            for name in (
                "rows",
                "new",
                "matched",
                "phone_only",
                "pos_id_only",
                "rejected",
                "identifiers_added",
                "notes_appended",
                "consent_set",
                "names_set",
            )
        }


_POS_ID = IdentifierKind.POS_ID.value
_PHONE = IdentifierKind.PHONE.value
_EMAIL = IdentifierKind.EMAIL.value
_CUSTOMER_LIST = ImportedKind.CUSTOMER_LIST.value


def _grouped(
    chunk: Sequence[tuple[int, CustomerRow]],
) -> tuple[list[int], tuple[dict[str, int], dict[str, int], dict[str, int]]]:
    """Each row's person (the index of its first row), and for each kind (pos_id, phone,
    email) the chunk's distinct values with the first row holding each.

    Union-find over row indices, the smaller index the root: rows sharing any identifier are
    one person (as identify_many), and a person's root is its first row. Most rows share
    nothing with another, so most rows cost three dictionary lookups."""
    parent = list(range(len(chunk)))
    owners: tuple[dict[str, int], dict[str, int], dict[str, int]] = ({}, {}, {})
    by_pos_id, by_phone, by_email = owners
    merged = False

    def find(index: int) -> int:
        root = index
        while parent[root] != root:
            root = parent[root]
        while parent[index] != root:
            parent[index], index = root, parent[index]
        return root

    def union(index: int, other: int) -> None:
        a, b = find(index), find(other)
        if a != b:
            parent[max(a, b)] = min(a, b)

    for index, (_, row) in enumerate(chunk):
        if row.pos_id is not None and (first := by_pos_id.setdefault(row.pos_id, index)) != index:
            union(index, first)
            merged = True
        if row.phone is not None and (first := by_phone.setdefault(row.phone, index)) != index:
            union(index, first)
            merged = True
        if row.email is not None and (first := by_email.setdefault(row.email, index)) != index:
            union(index, first)
            merged = True
    return ([find(index) for index in parent] if merged else parent), owners


def groups_of(chunk: Sequence[tuple[int, CustomerRow]]) -> list[int]:
    """For each row, the index of the first row of its person: rows sharing any identifier
    are one person."""
    return _grouped(chunk)[0]


def pairs_of(row: CustomerRow) -> list[tuple[str, str]]:
    pairs = []
    if row.pos_id is not None:
        pairs.append((_POS_ID, row.pos_id))
    if row.phone is not None:
        pairs.append((_PHONE, row.phone))
    if row.email is not None:
        pairs.append((_EMAIL, row.email))
    return pairs


# --- PostgreSQL: COPY into staging tables, then set-based ------------------------------------

# The staging tables live for the session (TEMP), emptied per chunk. import_person holds one
# line per person of the chunk (rows sharing an identifier folded in Python), import_ident
# its distinct identifiers, import_memo its distinct memos (read only for known customers);
# import_match the people already known, import_known one line per known customer touched.
_STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS import_person (grp integer, first_line integer, name text,
    name_line integer, consent text, consent_line integer, notes text);
CREATE TEMP TABLE IF NOT EXISTS import_ident (grp integer, kind text, value text);
CREATE TEMP TABLE IF NOT EXISTS import_memo (grp integer, line integer, memo text);
CREATE TEMP TABLE IF NOT EXISTS import_match (grp integer PRIMARY KEY, customer_id bigint);
CREATE TEMP TABLE IF NOT EXISTS import_known (customer_id bigint PRIMARY KEY,
    first_line integer, name text, memo text, consent text, old_notes text, old_name text,
    old_consent text, old_consent_source text, old_consent_at timestamptz);
CREATE TEMP TABLE IF NOT EXISTS import_change (customer_id bigint, kind text, object_id bigint,
    field text, old text, new text, previous jsonb);
TRUNCATE import_person, import_ident, import_memo, import_match, import_known, import_change;
-- A chunk's sort of its identifiers fits in memory. An import's transactions do not wait for
-- their commit to reach the disk: one lost to a crash is lost with its batch's progress in the
-- same transaction, and running the batch again (it is idempotent) brings it back.
SET LOCAL work_mem = '64MB';
SET LOCAL synchronous_commit = off;
-- Each statement runs once per chunk: compiling it would cost more than it saves.
SET LOCAL jit = off;
"""

# The most specific identifier decides who a row is (cxcore.services.customers).
_PRECEDENCE_SQL = (
    "CASE si.kind WHEN 'pos_id' THEN 0 WHEN 'card' THEN 1 WHEN 'phone' THEN 2 ELSE 3 END"
)

# Known customers touched above this many: the planner is told their count (a TEMP table has
# no statistics), so it joins them to cxcore_customer by the index or by a hash as fits.
_ANALYZE_KNOWN_OVER = 200
_UNIQUE_RETRIES = 5
# A chunk's people fall in this many parts by number (a person's identifiers are in one part
# only): outside a transaction each part is created on its own connection (PartWriters).
PARTS = 3


def _customer_insert_columns(now: datetime) -> tuple[list[str], list[Any]]:
    """Every other column of a new Customer row with its model default, derived from the
    model so a field added later is not left NULL by a hand-kept list."""
    explicit = {
        "id",
        "organization",
        "name",
        "notes",
        "marketing_email_consent",
        "marketing_email_consent_source",
        "marketing_email_consent_at",
    }
    columns, values = [], []
    for model_field in Customer._meta.concrete_fields:
        if model_field.name in explicit:
            continue
        if getattr(model_field, "auto_now", False) or getattr(model_field, "auto_now_add", False):
            value: Any = now
        else:
            value = model_field.get_default()
        columns.append(str(model_field.column))
        values.append(value)
    return columns, values


@dataclass(frozen=True, slots=True)
class StagePayload:
    """A chunk as COPY text: its people for import_person and their distinct identifiers for
    import_ident, each in PARTS parts (by the person's number: writers can create them apart,
    as no identifier is in two), and their distinct memos for import_memo."""

    persons: tuple[str, ...]
    identifiers: tuple[str, ...]
    memos: str


def stage_payload(chunk: Sequence[tuple[int, CustomerRow]]) -> StagePayload:
    """The chunk as COPY text, one line per person (rows that share an identifier are one:
    the first name and the last consent by line, the distinct memos in line order). Pure, so
    the reader thread builds it while the database works on the chunk before."""
    groups, owners = _grouped(chunk)
    members: dict[int, list[int]] = {}
    for index, group in enumerate(groups):
        if group != index:
            members.setdefault(group, [group]).append(index)
    persons: tuple[list[str], ...] = tuple([] for _ in range(PARTS))
    memos: list[str] = []
    for index, (line, row) in enumerate(chunk):
        if groups[index] != index:
            continue  # a later row of a person: folded into its first row's line
        rows = members.get(index)
        if rows is None:
            name, consent, notes = row.name, row.consent, row.notes
            name_line = line if name is not None else None
            consent_line = line if consent is not None else None
            if notes is not None:
                memos.append(f"{index}\t{line}\t{escaped(notes)}\n")
        else:
            name = name_line = consent = consent_line = None
            seen: dict[str, int] = {}
            for member in rows:
                member_line, member_row = chunk[member]
                if name is None and member_row.name is not None:
                    name, name_line = member_row.name, member_line
                if member_row.consent is not None:
                    consent, consent_line = member_row.consent, member_line
                if member_row.notes is not None:
                    seen.setdefault(member_row.notes, member_line)
            notes = "\n".join(seen) if seen else None
            memos.extend(f"{index}\t{at}\t{escaped(memo)}\n" for memo, at in seen.items())
        name_at = NULL if name_line is None else name_line
        consent_at = NULL if consent_line is None else consent_line
        persons[index % PARTS].append(
            f"{index}\t{line}\t{copy_field(name)}\t{name_at}\t"
            f"{copy_field(consent)}\t{consent_at}\t{copy_field(notes)}\n"
        )
    identifiers: tuple[list[str], ...] = tuple([] for _ in range(PARTS))
    for kind, owner in zip((_POS_ID, _PHONE, _EMAIL), owners, strict=True):
        for value, first in owner.items():
            group = groups[first]
            identifiers[group % PARTS].append(f"{group}\t{kind}\t{escaped(value)}\n")
    return StagePayload(
        persons=tuple("".join(part) for part in persons),
        identifiers=tuple("".join(part) for part in identifiers),
        memos="".join(memos),
    )


def _copy_people(raw: Any, persons: Sequence[str], identifiers: Sequence[str]) -> None:
    with raw.copy(
        "COPY import_person (grp, first_line, name, name_line, consent, consent_line, notes)"
        " FROM STDIN"
    ) as copy:
        for part in persons:
            copy.write(part)
    with raw.copy("COPY import_ident (grp, kind, value) FROM STDIN") as copy:
        for part in identifiers:
            copy.write(part)


def _match_and_create_retrying(
    cursor: Any, batch: ImportBatch, now: datetime, *, record: bool
) -> tuple[int, int]:
    for attempt in range(_UNIQUE_RETRIES):
        try:
            with transaction.atomic():
                return _match_and_create(cursor, batch, now, record=record)
        except IntegrityError as exc:
            # A till wrote one of these new people's identifiers since the match: matched
            # again, that person is now known (the savepoint undid this attempt).
            if attempt == _UNIQUE_RETRIES - 1 or not _is_identifier_clash(exc):
                raise
    raise AssertionError("unreachable")


class PartWriters:
    """Connections, each in a thread of its own, that create each chunk's new people, a part
    each, while the import's connection stages the chunk and then changes the known customers.

    One backend cannot keep up with the reader: several share the chunk's inserts (and fill
    each other's waits), and as every part commits on its own, no commit is left running
    alone while the others wait. Each checks its rows' keys by one lock statement where the
    role may (imports.keys), else by the triggers at its commit. Each part commits with its
    own undo records, so what landed is undone by the batch as ever; the next chunk starts
    after every part committed, so it sees them.
    Only for a real run outside any transaction: a dry run must see its own writes across
    chunks in one transaction, and a test's transaction is invisible to another connection.
    """

    def __init__(self) -> None:
        # One thread each, so each keeps its own connection (Django's are per thread).
        self.pools = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"import-writer-{part}")
            for part in range(PARTS)
        ]

    def submit(self, batch: ImportBatch, payload: StagePayload, now: datetime) -> list[Future[Any]]:
        return [
            pool.submit(self._create, batch, payload, part, now)
            for part, pool in enumerate(self.pools)
        ]

    @staticmethod
    def _create(
        batch: ImportBatch, payload: StagePayload, part: int, now: datetime
    ) -> tuple[int, list[tuple[int, int]]]:
        """(customers created, the part's people already known as (person, customer)), on
        this thread's own connection, committed."""
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            # Its new rows point only at the organization, the batch and each other.
            key_triggers_skipped(cursor, organization_id=batch.organization_id, batch_id=batch.pk),
        ):
            cursor.execute(_STAGE_DDL)
            _copy_people(
                cursor.cursor,
                payload.persons[part : part + 1],
                payload.identifiers[part : part + 1],
            )
            _, new = _match_and_create_retrying(cursor, batch, now, record=True)
            cursor.execute("SELECT grp, customer_id FROM import_match")
            return new, [(grp, customer_id) for grp, customer_id in cursor.fetchall()]

    def close(self) -> None:
        try:
            for pool in self.pools:
                # The thread's own connection.
                pool.submit(lambda: connection.close()).result()
        finally:
            for pool in self.pools:
                pool.shutdown()


def apply_chunk_pg(
    batch: ImportBatch,
    chunk: Sequence[tuple[int, CustomerRow]],
    tally: Tally,
    now: datetime,
    *,
    record: bool,
    payload: StagePayload | None = None,
    writer: PartWriters | None = None,
) -> None:
    """The chunk's writes: who each person is, the new customers with their identifiers (and
    their undo records) in one statement, then what changes on the known customers. With
    writers, the new people are created on their connections, a part each, and this one
    changes only the known customers."""
    if payload is None:
        payload = stage_payload(chunk)
    others = writer.submit(batch, payload, now) if writer is not None and record else []
    with connection.cursor() as cursor:
        cursor.execute(_STAGE_DDL)
        raw = cursor.cursor  # psycopg 3's own cursor, for COPY
        _copy_people(raw, payload.persons, payload.identifiers)
        known = new = 0
        if not others:
            known, new = _match_and_create_retrying(cursor, batch, now, record=record)
        for other in others:
            other_new, other_known = other.result()
            new += other_new
            if other_known:
                known += len(other_known)
                with raw.copy("COPY import_match (grp, customer_id) FROM STDIN") as copy:
                    for grp, customer_id in other_known:
                        copy.write_row((grp, customer_id))
        changes = (0, 0, 0, 0)
        if known:
            if payload.memos:
                with raw.copy("COPY import_memo (grp, line, memo) FROM STDIN") as copy:
                    copy.write(payload.memos)
            changes = _change_known(cursor, batch, now, known=known, record=record)
    identifiers, notes, consents, names = changes
    tally.new += new
    tally.matched += len(chunk) - new
    tally.identifiers_added += identifiers
    tally.notes_appended += notes
    tally.consent_set += consents
    tally.names_set += names


def _is_identifier_clash(exc: IntegrityError) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == "identifier_unique_per_org"


def _match_and_create(
    cursor: Any, batch: ImportBatch, now: datetime, *, record: bool
) -> tuple[int, int]:
    """(people already known, customers created). A person is known by their most specific
    identifier the organization has (one index probe each: the LATERAL keeps it from reading
    the organization's every identifier); the others are created with their identifiers."""
    org_id = batch.organization_id
    cursor.execute(
        f"""
        INSERT INTO import_match (grp, customer_id)
        SELECT DISTINCT ON (si.grp) si.grp, i.customer_id
        FROM import_ident si
        CROSS JOIN LATERAL (
            SELECT i.customer_id FROM cxcore_identifier i
            WHERE i.organization_id = %s AND i.kind = si.kind AND i.value = si.value
            LIMIT 1
        ) i
        ORDER BY si.grp, {_PRECEDENCE_SQL}
        """,
        [org_id],
    )
    known = cursor.rowcount
    extra_columns, extra_values = _customer_insert_columns(now)
    unknown = "WHERE NOT EXISTS (SELECT 1 FROM import_match m WHERE m.grp = p.grp)" if known else ""
    # The new people's ids are drawn from the sequence up front, so the customers, their
    # identifiers and their undo records are written by one statement that reads nothing
    # back. None of their identifiers was there a statement ago: a plain INSERT (a till that
    # wrote one since makes it fail, and the caller matches again).
    if record:
        # One undo row for the part's new customers: a row each cost a fifth of the import.
        last = f"""
            INSERT INTO imports_importedobject (batch_id, kind, customer_id, object_id, previous)
            SELECT %s, '{_CUSTOMER_LIST}', 0, NULL, jsonb_build_object('ids', jsonb_agg(id))
            FROM new HAVING count(*) > 0
            RETURNING jsonb_array_length(previous->'ids')
        """
        last_params: list[Any] = [batch.pk]
    else:
        last = "SELECT count(*) FROM new"
        last_params = []
    cursor.execute(
        f"""
        WITH new AS MATERIALIZED (
            SELECT p.grp, nextval((SELECT pg_get_serial_sequence('cxcore_customer', 'id'))
                                  ::regclass) AS id,
                   p.name, p.notes, p.consent
            FROM import_person p {unknown}
        ), customers AS (
            INSERT INTO cxcore_customer (id, organization_id, name, notes,
                marketing_email_consent, marketing_email_consent_source,
                marketing_email_consent_at, {", ".join(extra_columns)})
            SELECT id, %s, coalesce(name, ''), coalesce(notes, ''),
                   coalesce(consent, 'unknown'),
                   CASE WHEN consent IS NULL THEN '' ELSE 'import' END,
                   CASE WHEN consent IS NULL THEN NULL ELSE %s::timestamptz END,
                   {", ".join(["%s"] * len(extra_values))}
            FROM new
        ), identifiers AS (
            -- In (kind, value) order, as every writer takes them (no deadlocks).
            INSERT INTO cxcore_identifier (organization_id, customer_id, kind, value,
                                           created_at)
            SELECT %s, n.id, si.kind, si.value, %s
            FROM import_ident si JOIN new n ON n.grp = si.grp
            ORDER BY si.kind, si.value
        )
        {last}
        """,
        [org_id, now, *extra_values, org_id, now, *last_params],
    )
    created = cursor.fetchone()
    return known, int(created[0]) if created else 0


def _change_known(
    cursor: Any, batch: ImportBatch, now: datetime, *, known: int, record: bool
) -> tuple[int, int, int, int]:
    """What the chunk adds to the customers already known: identifiers, a name where there
    was none, memos not yet in the notes, consent; each recorded for undo and on the card.
    Returns (identifiers, notes, consents, names) added."""
    org_id = batch.organization_id
    # One line per customer: several people of the file may be one known customer. The first
    # name by line, the last consent given.
    cursor.execute(
        """
        INSERT INTO import_known (customer_id, first_line, name, consent, old_notes, old_name,
                                  old_consent, old_consent_source, old_consent_at)
        SELECT k.customer_id, k.first_line, k.name, k.consent, c.notes, c.name,
               c.marketing_email_consent, c.marketing_email_consent_source,
               c.marketing_email_consent_at
        FROM (
            SELECT m.customer_id, min(p.first_line) AS first_line,
                   (array_agg(p.name ORDER BY p.name_line)
                        FILTER (WHERE p.name IS NOT NULL))[1] AS name,
                   (array_agg(p.consent ORDER BY p.consent_line DESC)
                        FILTER (WHERE p.consent IS NOT NULL))[1] AS consent
            FROM import_match m JOIN import_person p ON p.grp = m.grp
            GROUP BY m.customer_id
        ) k
        JOIN cxcore_customer c ON c.id = k.customer_id
        """
    )
    if known > _ANALYZE_KNOWN_OVER:
        cursor.execute("ANALYZE import_known")
    # The memos not yet in the notes (so a re-import appends nothing), in line order.
    cursor.execute(
        """
        UPDATE import_known x SET memo = m.memo
        FROM (
            SELECT d.customer_id, string_agg(d.memo, E'\n' ORDER BY d.line) AS memo
            FROM (
                SELECT DISTINCT ON (g.customer_id, s.memo) g.customer_id, s.memo, s.line
                FROM import_memo s JOIN import_match g ON g.grp = s.grp
                ORDER BY g.customer_id, s.memo, s.line
            ) d
            JOIN import_known c ON c.customer_id = d.customer_id
            -- A memo already a line (or lines) of the notes is there: not appended again.
            WHERE strpos(E'\n' || c.old_notes || E'\n', E'\n' || d.memo || E'\n') = 0
            GROUP BY d.customer_id
        ) m
        WHERE m.customer_id = x.customer_id
        """
    )
    # Their new identifiers; one another customer holds already stays theirs (merging is
    # explicit).
    cursor.execute(
        """
        WITH added AS (
            INSERT INTO cxcore_identifier (organization_id, customer_id, kind, value,
                                           created_at)
            SELECT %s, g.customer_id, si.kind, si.value, %s
            FROM import_ident si JOIN import_match g ON g.grp = si.grp
            ORDER BY si.kind, si.value
            ON CONFLICT (organization_id, kind, value) DO NOTHING
            RETURNING id, customer_id, kind, value
        )
        INSERT INTO import_change (customer_id, kind, object_id, field, old, new)
        SELECT customer_id, 'identifier_added', id, kind, NULL, value FROM added
        """,
        [org_id, now],
    )
    if record:
        cursor.execute(
            """
            WITH named AS (
                UPDATE cxcore_customer c SET name = x.name, updated_at = %s
                FROM import_known x
                WHERE c.id = x.customer_id AND c.name = '' AND x.name IS NOT NULL
                RETURNING c.id, x.name
            )
            INSERT INTO import_change (customer_id, kind, field, old, new, previous)
            SELECT id, 'name_set', 'name', '', name, jsonb_build_object('name', '', 'set', name)
            FROM named
            """,
            [now],
        )
        cursor.execute(
            """
            WITH noted AS (
                UPDATE cxcore_customer c
                SET notes = CASE WHEN c.notes = '' THEN x.memo
                                 ELSE c.notes || E'\n' || x.memo END,
                    updated_at = %s
                FROM import_known x
                WHERE c.id = x.customer_id AND x.memo IS NOT NULL
                  -- Notes hold at most NOTES_MAX characters: a memo that does not fit
                  -- waits (the row is imported; the memo is counted as not appended).
                  AND length(c.notes) + 1 + length(x.memo) <= %s
                RETURNING c.id, x.old_notes, c.notes, x.memo
            )
            INSERT INTO import_change (customer_id, kind, field, old, new, previous)
            SELECT id, 'note_appended', 'notes', old_notes, notes,
                   jsonb_build_object('appended', memo)
            FROM noted
            """,
            [now, NOTES_MAX],
        )
        cursor.execute(
            """
            WITH consented AS (
                UPDATE cxcore_customer c
                SET marketing_email_consent = x.consent,
                    marketing_email_consent_source = 'import',
                    marketing_email_consent_at = %s, updated_at = %s
                FROM import_known x
                WHERE c.id = x.customer_id AND x.consent IS NOT NULL
                  AND c.marketing_email_consent <> x.consent
                RETURNING c.id, x.old_consent, x.old_consent_source, x.old_consent_at, x.consent
            )
            INSERT INTO import_change (customer_id, kind, field, old, new, previous)
            SELECT id, 'consent_set', 'marketing_email_consent', old_consent, consent,
                   jsonb_build_object('consent', old_consent, 'source', old_consent_source,
                                      'at', old_consent_at)
            FROM consented
            """,
            [now, now],
        )
    else:
        # A dry run is one transaction over the whole file: updating known customers would
        # hold their rows against the till's writes until it ends. It counts instead.
        cursor.execute(
            """
            INSERT INTO import_change (customer_id, kind, field)
            SELECT customer_id, 'name_set', 'name' FROM import_known
            WHERE old_name = '' AND name IS NOT NULL
            UNION ALL
            SELECT customer_id, 'note_appended', 'notes' FROM import_known
            WHERE memo IS NOT NULL AND length(old_notes) + 1 + length(memo) <= %s
            UNION ALL
            SELECT customer_id, 'consent_set', 'marketing_email_consent' FROM import_known
            WHERE consent IS NOT NULL AND old_consent <> consent
            """,
            [NOTES_MAX],
        )
    cursor.execute(
        """
        SELECT count(*) FILTER (WHERE kind = 'identifier_added'),
               count(*) FILTER (WHERE kind = 'note_appended'),
               count(*) FILTER (WHERE kind = 'consent_set'),
               count(*) FILTER (WHERE kind = 'name_set')
        FROM import_change
        """
    )
    identifiers, notes, consents, names = cursor.fetchone()
    if record:
        cursor.execute(
            """
            INSERT INTO imports_importedobject (batch_id, kind, customer_id, object_id,
                                                previous)
            SELECT %s, kind, customer_id, object_id, previous FROM import_change
            """,
            [batch.pk],
        )
        # The card's history: one line per known customer the import changed.
        cursor.execute(
            """
            INSERT INTO cxcore_customeredit (organization_id, customer_id, kind, at,
                                             by_user_id, by_api_key_id, fields, changes)
            SELECT %s, customer_id, %s, %s, %s, NULL,
                   jsonb_agg(DISTINCT field ORDER BY field),
                   jsonb_object_agg(field, jsonb_build_object('old', old, 'new', new))
            FROM import_change
            GROUP BY customer_id ORDER BY customer_id
            """,
            [org_id, EditKind.IMPORT.value, now, batch.created_by_id],
        )
    return identifiers, notes, consents, names


# --- the plain path (SQLite) -----------------------------------------------------------------


def apply_chunk_plain(
    batch: ImportBatch,
    chunk: Sequence[tuple[int, CustomerRow]],
    tally: Tally,
    now: datetime,
    *,
    record: bool,
) -> None:
    """The same rules row by row through identify_many: for the embedded default only."""
    organization = batch.organization
    # One entry per person of the chunk (rows sharing an identifier), as the SQL path groups.
    groups = groups_of(chunk)
    merged: dict[int, dict[str, str]] = {}
    for (_, row), group in zip(chunk, groups, strict=True):
        for kind, value in pairs_of(row):
            merged.setdefault(group, {}).setdefault(kind, value)
    leaders = sorted(merged)
    values = sorted({value for _, row in chunk for _, value in pairs_of(row)})
    known_before = {
        (kind, value): owner
        for kind, value, owner in Identifier.objects.for_org(organization)
        .filter(value__in=values)
        .values_list("kind", "value", "customer_id")
    }
    owners_before = set(known_before.values())
    of_leader = dict(
        zip(
            leaders,
            identify_many(organization=organization, wanted=[merged[g] for g in leaders]),
            strict=True,
        )
    )
    customer_ids = [of_leader[group] for group in groups]
    created = set(customer_ids) - owners_before
    imported: list[ImportedObject] = []
    new_ids: list[int] = []
    seen: set[int] = set()
    edits: dict[int, dict[str, dict[str, Any]]] = {}
    for (_, row), customer_id in zip(chunk, customer_ids, strict=True):
        is_new = customer_id in created
        if is_new and customer_id not in seen:
            tally.new += 1
            new_ids.append(customer_id)
        else:
            tally.matched += 1
        seen.add(customer_id)
        customer = Customer.objects.get(pk=customer_id)
        changes = edits.setdefault(customer_id, {}) if not is_new else {}
        if row.name and not customer.name:
            customer.name = row.name
            if not is_new:
                changes["name"] = {"old": "", "new": row.name}
                imported.append(
                    ImportedObject(
                        batch=batch,
                        kind=ImportedKind.NAME_SET,
                        customer_id=customer_id,
                        previous={"name": "", "set": row.name},
                    )
                )
                tally.names_set += 1
        fits = len(customer.notes) + 1 + len(row.notes or "") <= NOTES_MAX
        if row.notes and fits and f"\n{row.notes}\n" not in f"\n{customer.notes}\n":
            old = customer.notes
            customer.notes = f"{old}\n{row.notes}" if old else row.notes
            if not is_new:
                changes["notes"] = {"old": old, "new": customer.notes}
                imported.append(
                    ImportedObject(
                        batch=batch,
                        kind=ImportedKind.NOTE_APPENDED,
                        customer_id=customer_id,
                        previous={"appended": row.notes},
                    )
                )
                tally.notes_appended += 1
        if row.consent and row.consent != customer.marketing_email_consent:
            at = customer.marketing_email_consent_at
            previous = {
                "consent": customer.marketing_email_consent,
                "source": customer.marketing_email_consent_source,
                "at": at.isoformat() if at else None,
            }
            customer.marketing_email_consent = row.consent
            customer.marketing_email_consent_source = "import"
            customer.marketing_email_consent_at = now
            if not is_new:
                changes["marketing_email_consent"] = {
                    "old": previous["consent"],
                    "new": row.consent,
                }
                imported.append(
                    ImportedObject(
                        batch=batch,
                        kind=ImportedKind.CONSENT_SET,
                        customer_id=customer_id,
                        previous=previous,
                    )
                )
                tally.consent_set += 1
        customer.save()
    # The identifiers the known customers learnt from this chunk.
    learnt = (
        Identifier.objects.for_org(organization)
        .filter(value__in=values, customer_id__in=owners_before)
        .values_list("id", "kind", "value", "customer_id")
    )
    for identifier_id, kind, value, owner in learnt:
        if (kind, value) not in known_before:
            tally.identifiers_added += 1
            edits.setdefault(owner, {})[kind] = {"old": None, "new": value}
            imported.append(
                ImportedObject(
                    batch=batch,
                    kind=ImportedKind.IDENTIFIER_ADDED,
                    customer_id=owner,
                    object_id=identifier_id,
                )
            )
    if record:
        if new_ids:
            imported.append(
                ImportedObject(
                    batch=batch, kind=ImportedKind.CUSTOMER_LIST, customer_id=0,
                    previous={"ids": new_ids},
                )
            )  # fmt: skip
        ImportedObject.objects.bulk_create(imported)
        CustomerEdit.objects.bulk_create(
            CustomerEdit(
                organization=organization,
                customer_id=customer_id,
                kind=EditKind.IMPORT,
                at=now,
                by_user=batch.created_by,
                fields=sorted(changes),
                changes=changes,
            )
            for customer_id, changes in sorted(edits.items())
            if changes
        )

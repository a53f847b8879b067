"""The writes of one chunk of customer rows: who each row is, and what changes.

On PostgreSQL the chunk is COPY'd into TEMP staging tables and written set-based: match the
known identifiers, create the new people (ids drawn from the sequence up front), insert their
identifiers, append memos, set names and consent, and record every change as an
ImportedObject row (what undo takes back) and a CustomerEdit per changed card. On SQLite the
same rules run row by row through identify_many (`apply_chunk_plain`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection

from cxcore.models import Customer, CustomerEdit, EditKind, Identifier, IdentifierKind
from cxcore.services.customers import identify_many
from imports.formats import NOTES_MAX, CustomerRow
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


def groups_of(chunk: Sequence[tuple[int, CustomerRow]]) -> list[int]:
    """For each row, the index of the first row of its person: rows sharing any identifier
    are one person (union-find over (kind, value))."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def root(pair: tuple[str, str]) -> tuple[str, str]:
        while (up := parent.setdefault(pair, pair)) != pair:
            parent[pair] = parent.setdefault(up, up)
            pair = up
        return pair

    row_pairs = [pairs_of(row) for _, row in chunk]
    for pairs in row_pairs:
        first = root(pairs[0])
        for pair in pairs[1:]:
            other = root(pair)
            if other != first:
                parent[other] = first
    leader: dict[tuple[str, str], int] = {}
    return [leader.setdefault(root(pairs[0]), index) for index, pairs in enumerate(row_pairs)]


def pairs_of(row: CustomerRow) -> list[tuple[str, str]]:
    pairs = []
    if row.pos_id is not None:
        pairs.append((IdentifierKind.POS_ID.value, row.pos_id))
    if row.phone is not None:
        pairs.append((IdentifierKind.PHONE.value, row.phone))
    if row.email is not None:
        pairs.append((IdentifierKind.EMAIL.value, row.email))
    return pairs


# --- PostgreSQL: COPY into a staging table, then set-based -----------------------------------

_STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS import_stage (
    line integer, grp integer, name text, email text, phone text, pos_id text,
    memo text, consent text
);
CREATE TEMP TABLE IF NOT EXISTS import_ident (grp integer, kind text, value text);
CREATE TEMP TABLE IF NOT EXISTS import_grp (grp integer PRIMARY KEY, customer_id bigint,
    is_new boolean);
CREATE TEMP TABLE IF NOT EXISTS import_cust (customer_id bigint PRIMARY KEY, is_new boolean,
    first_line integer, name text, memo text, consent text, old_notes text, old_name text,
    old_consent text, old_consent_source text, old_consent_at timestamptz);
CREATE TEMP TABLE IF NOT EXISTS import_change (customer_id bigint, kind text, object_id bigint,
    field text, old text, new text, previous jsonb);
TRUNCATE import_stage, import_ident, import_grp, import_cust, import_change;
"""

# The most specific identifier decides who a row is (cxcore.services.customers).
_PRECEDENCE_SQL = (
    "CASE si.kind WHEN 'pos_id' THEN 0 WHEN 'card' THEN 1 WHEN 'phone' THEN 2 ELSE 3 END"
)


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


def _customer_sequence(cursor: Any) -> str:
    # Looked up once per chunk: as an expression in the INSERT it was evaluated per row.
    cursor.execute("SELECT pg_get_serial_sequence('cxcore_customer', 'id')")
    return str(cursor.fetchone()[0])


# COPY's text format: a backslash, tab, newline or carriage return in a value is escaped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(value: str | None) -> str:
    return "\\N" if value is None else value.translate(_COPY_ESCAPES)


@dataclass(frozen=True, slots=True)
class StagePayload:
    """A chunk as COPY text: its rows for import_stage and its people's distinct identifiers
    for import_ident."""

    rows: str
    identifiers: str


def stage_payload(chunk: Sequence[tuple[int, CustomerRow]]) -> StagePayload:
    """The chunk as COPY text, with each row's person (the first line of the rows that share
    an identifier, less the chunk's first: unique across chunks). Pure, so the reader thread
    builds it while the database works on the chunk before."""
    groups = groups_of(chunk)
    base = chunk[0][0]
    field = _copy_field
    lines = []
    identifiers: set[tuple[int, str, str]] = set()
    for (line, row), group in zip(chunk, groups, strict=True):
        person = chunk[group][0] - base
        lines.append(
            f"{line}\t{person}\t{field(row.name)}\t{field(row.email)}\t"
            f"{field(row.phone)}\t{field(row.pos_id)}\t{field(row.notes)}\t{field(row.consent)}\n"
        )
        for kind, value in pairs_of(row):
            identifiers.add((person, kind, value))
    return StagePayload(
        rows="".join(lines),
        identifiers="".join(f"{p}\t{k}\t{field(v)}\n" for p, k, v in identifiers),
    )


def apply_chunk_pg(
    batch: ImportBatch,
    chunk: Sequence[tuple[int, CustomerRow]],
    tally: Tally,
    now: datetime,
    *,
    record: bool,
    payload: StagePayload | None = None,
) -> None:
    org_id = batch.organization_id
    if payload is None:
        payload = stage_payload(chunk)
    with connection.cursor() as cursor:
        cursor.execute(_STAGE_DDL)
        raw = cursor.cursor  # psycopg 3's own cursor, for COPY
        with raw.copy(
            "COPY import_stage (line, grp, name, email, phone, pos_id, memo, consent) FROM STDIN"
        ) as copy:
            copy.write(payload.rows)
        with raw.copy("COPY import_ident (grp, kind, value) FROM STDIN") as copy:
            copy.write(payload.identifiers)
        # Who each person is already, by their most specific known identifier.
        cursor.execute(
            f"""
            INSERT INTO import_grp (grp, customer_id, is_new)
            SELECT DISTINCT ON (si.grp) si.grp, i.customer_id, false
            FROM import_ident si
            JOIN cxcore_identifier i
              ON i.organization_id = %s AND i.kind = si.kind AND i.value = si.value
            ORDER BY si.grp, {_PRECEDENCE_SQL}
            """,
            [org_id],
        )
        # The others are new people: ids drawn from the sequence up front, so the rows and
        # their identifiers are written without reading anything back.
        cursor.execute(
            """
            INSERT INTO import_grp (grp, customer_id, is_new)
            SELECT g.grp, nextval(%s::regclass), true
            FROM (SELECT DISTINCT grp FROM import_stage) g
            WHERE NOT EXISTS (SELECT 1 FROM import_grp m WHERE m.grp = g.grp)
            """,
            [_customer_sequence(cursor)],
        )
        # One line per customer: several people of the file may be one known customer. The
        # first name by line, the memos not yet in the notes (so a re-import appends nothing),
        # the last consent given.
        cursor.execute(
            """
            INSERT INTO import_cust (customer_id, is_new, first_line, name, consent, old_notes,
                                     old_name, old_consent, old_consent_source, old_consent_at)
            SELECT g.customer_id, bool_and(g.is_new), min(s.line),
                   (array_agg(s.name ORDER BY s.line) FILTER (WHERE s.name IS NOT NULL))[1],
                   (array_agg(s.consent ORDER BY s.line DESC)
                        FILTER (WHERE s.consent IS NOT NULL))[1],
                   min(c.notes), min(c.name), min(c.marketing_email_consent),
                   min(c.marketing_email_consent_source), min(c.marketing_email_consent_at)
            FROM import_stage s
            JOIN import_grp g ON g.grp = s.grp
            LEFT JOIN cxcore_customer c ON c.id = g.customer_id AND NOT g.is_new
            GROUP BY g.customer_id
            """
        )
        cursor.execute(
            """
            UPDATE import_cust x SET memo = m.memo
            FROM (
                SELECT d.customer_id, string_agg(d.memo, E'\n' ORDER BY d.line) AS memo
                FROM (
                    SELECT DISTINCT ON (g.customer_id, s.memo) g.customer_id, s.memo, s.line
                    FROM import_stage s JOIN import_grp g ON g.grp = s.grp
                    WHERE s.memo IS NOT NULL
                    ORDER BY g.customer_id, s.memo, s.line
                ) d
                JOIN import_cust c ON c.customer_id = d.customer_id
                -- A memo already a line (or lines) of the notes is there: not appended again.
                WHERE c.is_new
                   OR strpos(E'\n' || c.old_notes || E'\n', E'\n' || d.memo || E'\n') = 0
                GROUP BY d.customer_id
            ) m
            WHERE m.customer_id = x.customer_id
            """
        )
        extra_columns, extra_values = _customer_insert_columns(now)
        cursor.execute(
            f"""
            INSERT INTO cxcore_customer (id, organization_id, name, notes,
                marketing_email_consent, marketing_email_consent_source,
                marketing_email_consent_at, {", ".join(extra_columns)})
            SELECT customer_id, %s, coalesce(name, ''), coalesce(memo, ''),
                   coalesce(consent, 'unknown'),
                   CASE WHEN consent IS NULL THEN '' ELSE 'import' END,
                   CASE WHEN consent IS NULL THEN NULL ELSE %s::timestamptz END,
                   {", ".join(["%s"] * len(extra_values))}
            FROM import_cust WHERE is_new ORDER BY customer_id
            """,
            [org_id, now, *extra_values],
        )
        # Identifiers in (kind, value) order, as every writer takes them (no deadlocks); one
        # another customer holds already stays theirs (merging is explicit).
        cursor.execute(
            """
            WITH added AS (
                INSERT INTO cxcore_identifier (organization_id, customer_id, kind, value,
                                               created_at)
                SELECT %s, g.customer_id, si.kind, si.value, %s
                FROM import_ident si JOIN import_grp g ON g.grp = si.grp
                ORDER BY si.kind, si.value
                ON CONFLICT (organization_id, kind, value) DO NOTHING
                RETURNING id, customer_id, kind, value
            )
            -- A new person's identifiers are kept too ('identifier_new', recorded nowhere):
            -- they tell the orphan check below who got one without an index lookup each.
            INSERT INTO import_change (customer_id, kind, object_id, field, old, new)
            SELECT a.customer_id,
                   CASE WHEN x.is_new THEN 'identifier_new' ELSE 'identifier_added' END,
                   a.id, a.kind, NULL, a.value
            FROM added a JOIN import_cust x ON x.customer_id = a.customer_id
            """,
            [org_id, now],
        )
        # A new person whose every identifier a concurrent writer took first is no one.
        cursor.execute(
            """
            WITH orphan AS (
                DELETE FROM cxcore_customer c USING import_cust x
                WHERE x.is_new AND c.id = x.customer_id
                  AND NOT EXISTS (SELECT 1 FROM import_change n
                                  WHERE n.customer_id = x.customer_id
                                    AND n.kind = 'identifier_new')
                RETURNING c.id
            )
            DELETE FROM import_cust x USING orphan o WHERE x.customer_id = o.id
            """
        )
        if record:
            cursor.execute(
                """
                WITH named AS (
                    UPDATE cxcore_customer c SET name = x.name, updated_at = %s
                    FROM import_cust x
                    WHERE NOT x.is_new AND c.id = x.customer_id AND c.name = ''
                      AND x.name IS NOT NULL
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
                    FROM import_cust x
                    WHERE NOT x.is_new AND c.id = x.customer_id AND x.memo IS NOT NULL
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
                    FROM import_cust x
                    WHERE NOT x.is_new AND c.id = x.customer_id AND x.consent IS NOT NULL
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
                SELECT customer_id, 'name_set', 'name' FROM import_cust
                WHERE NOT is_new AND old_name = '' AND name IS NOT NULL
                UNION ALL
                SELECT customer_id, 'note_appended', 'notes' FROM import_cust
                WHERE NOT is_new AND memo IS NOT NULL
                  AND length(old_notes) + 1 + length(memo) <= %s
                UNION ALL
                SELECT customer_id, 'consent_set', 'marketing_email_consent' FROM import_cust
                WHERE NOT is_new AND consent IS NOT NULL AND old_consent <> consent
                """,
                [NOTES_MAX],
            )
        cursor.execute(
            """
            SELECT count(*) FILTER (WHERE is_new),
                   (SELECT count(*) FROM import_change WHERE kind = 'identifier_added'),
                   (SELECT count(*) FROM import_change WHERE kind = 'note_appended'),
                   (SELECT count(*) FROM import_change WHERE kind = 'consent_set'),
                   (SELECT count(*) FROM import_change WHERE kind = 'name_set')
            FROM import_cust
            """
        )
        new, identifiers, notes, consents, names = cursor.fetchone()
        if record:
            cursor.execute(
                """
                INSERT INTO imports_importedobject (batch_id, kind, customer_id, object_id,
                                                    previous)
                SELECT %s, 'customer_created', customer_id, customer_id, NULL
                FROM import_cust WHERE is_new
                UNION ALL
                SELECT %s, kind, customer_id, object_id, previous FROM import_change
                WHERE kind <> 'identifier_new'
                """,
                [batch.pk, batch.pk],
            )
            # The card's history: one line per known customer the import changed.
            cursor.execute(
                """
                INSERT INTO cxcore_customeredit (organization_id, customer_id, kind, at,
                                                 by_user_id, by_api_key_id, fields, changes)
                SELECT %s, customer_id, %s, %s, %s, NULL,
                       jsonb_agg(DISTINCT field ORDER BY field),
                       jsonb_object_agg(field, jsonb_build_object('old', old, 'new', new))
                FROM import_change WHERE kind <> 'identifier_new'
                GROUP BY customer_id ORDER BY customer_id
                """,
                [org_id, EditKind.IMPORT.value, now, batch.created_by_id],
            )
    tally.new += new
    tally.matched += len(chunk) - new
    tally.identifiers_added += identifiers
    tally.notes_appended += notes
    tally.consent_set += consents
    tally.names_set += names


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
    seen: set[int] = set()
    edits: dict[int, dict[str, dict[str, Any]]] = {}
    for (_, row), customer_id in zip(chunk, customer_ids, strict=True):
        is_new = customer_id in created
        if is_new and customer_id not in seen:
            tally.new += 1
            imported.append(
                ImportedObject(
                    batch=batch,
                    kind=ImportedKind.CUSTOMER_CREATED,
                    customer_id=customer_id,
                    object_id=customer_id,
                )
            )
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

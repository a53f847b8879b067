"""Importing customers from a POS export: the stored file, the batch, the streamed run.

The file is streamed: a csv reader over a text stream reads ~20k rows at a time, each row is
cleaned in Python (imports.formats: phone via the organization's country, email lower-cased),
and each chunk is written by imports.customer_chunks (COPY into a TEMP staging table, then
set-based SQL, every change recorded for undo, imports.undo). Memory stays flat in the file's
size.

Rows that share an identifier within a chunk are one person (union-find, as identify_many);
across chunks, the identifiers the earlier chunk inserted make the later rows match. A real
import commits per chunk (progress is visible; what landed is recorded for undo); a dry run is
one transaction rolled back at the end, so its counts are the real ones and nothing is written.

PostgreSQL is the target; on the embedded SQLite the same function walks a plain path
(`customer_chunks.apply_chunk_plain`, through identify_many), slower and with the same results.
"""

from __future__ import annotations

import csv
import hashlib
import os
import queue
import sys
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections, transaction
from django.db.models import Count
from django.utils import timezone

from accounts.errors import InvalidInput
from accounts.models import Location, Organization, TeamAction, User
from accounts.services import record_team_event
from imports.customer_chunks import (
    PartWriters,
    StagePayload,
    Tally,
    apply_chunk_pg,
    apply_chunk_plain,
    stage_payload,
)
from imports.formats import CustomerRow, MappingError, column_fields, row_cleaner
from imports.models import (
    IMPORT_LOCK,
    ImportBatch,
    ImportedKind,
    ImportedObject,
    ImportFormat,
    ImportKind,
    ImportStatus,
    customers_created,
)

CHUNK_ROWS = 20_000
FIRST_REJECTIONS = 20
CUSTOMER_FORMATS = (ImportFormat.SQUARE, ImportFormat.GENERIC)

Progress = Callable[[int], None]


# --- files -----------------------------------------------------------------------------------


def upload_dir() -> Path:
    path = Path(settings.IMPORT_UPLOAD_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_digest(path: str | Path) -> tuple[str, int]:
    """(sha256, size) of a file, read in blocks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def count_lines(path: str | Path) -> int:
    """Data rows, estimated from newlines (a quoted multi-line memo counts more): the progress
    bar's total, corrected to the real count at the end."""
    lines = 0
    last = b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)


@contextmanager
def open_csv(path: str | Path) -> Iterator[TextIO]:
    # utf-8-sig drops a byte-order mark; newline="" lets csv handle CRLF and quoted newlines.
    with open(path, encoding="utf-8-sig", newline="", errors="strict") as handle:
        yield handle


def read_headers(path: str | Path) -> list[str]:
    """The header row of a CSV file (for the page's mapping step); InvalidInput if none."""
    try:
        with open_csv(path) as handle:
            headers = next(csv.reader(handle), None)
    except UnicodeDecodeError as exc:
        raise InvalidInput("The file is not UTF-8 text.", field="file") from exc
    except csv.Error as exc:
        raise InvalidInput(f"The file is not a CSV file: {exc}.", field="file") from exc
    if not headers or not any(header.strip() for header in headers):
        raise InvalidInput("The file has no header row.", field="file")
    return headers


# --- starting a batch ------------------------------------------------------------------------


def create_customer_batch(
    *,
    organization: Organization,
    path: str | Path,
    file_name: str,
    format: str,
    column_map: dict[str, str] | None = None,
    location: Location | None = None,
    dry_run: bool = False,
    created_by: User | None = None,
) -> ImportBatch:
    """A queued batch for a stored file, after checking its header against the format."""
    if format not in CUSTOMER_FORMATS:
        raise InvalidInput(f"{format!r} is not a customers format.", field="format")
    headers = read_headers(path)
    try:
        column_fields(headers, format=format, column_map=column_map)
    except MappingError as exc:
        raise InvalidInput(str(exc), field=exc.field) from exc
    sha256, size = file_digest(path)
    return ImportBatch.objects.create(
        organization=organization,
        location=location,
        kind=ImportKind.CUSTOMERS,
        format=format,
        file_name=file_name[:255],
        file_sha256=sha256,
        file_size=size,
        column_map=column_map or {},
        dry_run=dry_run,
        upload_path=str(path),
        rows_total=count_lines(path),
        created_by=created_by,
    )


# --- the import ------------------------------------------------------------------------------


class _Rejections:
    """The rejected rows as a CSV beside the upload: the file's own cells, then the line and
    the reason, so the owner can fix them and import that file again."""

    def __init__(self, batch: ImportBatch, headers: Sequence[str]) -> None:
        self.batch = batch
        self.headers = list(headers)
        self.handle: TextIO | None = None
        self.writer: Any = None

    def add(self, line: int, cells: Sequence[str], reason: str, tally: Tally) -> None:
        tally.rejected += 1
        if len(tally.first_rejections) < FIRST_REJECTIONS:
            tally.first_rejections.append({"line": line, "reason": reason})
        if self.writer is None:
            path = upload_dir() / f"rejected-{self.batch.pk}.csv"
            self.handle = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed by close())
            self.writer = csv.writer(self.handle)
            self.writer.writerow([*self.headers, "Line", "Reason"])
            self.batch.rejected_path = str(path)
        cells = list(cells)[: len(self.headers)]
        cells += [""] * (len(self.headers) - len(cells))
        self.writer.writerow([*cells, line, reason])

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _read_chunks(
    reader: Any, fields: dict[int, str], country: str, rejections: _Rejections, tally: Tally
) -> Iterator[list[tuple[int, CustomerRow]]]:
    clean = row_cleaner(fields, country=country)
    chunk: list[tuple[int, CustomerRow]] = []
    append = chunk.append
    line = reader.line_num + 1  # where the next record starts (the header was line 1)
    for cells in reader:
        start, line = line, reader.line_num + 1
        row = clean(cells)
        if isinstance(row, str):
            # A blank line is no row (and always refused, so it is looked for only here).
            if not "".join(cells).strip():
                continue
            tally.rows += 1
            rejections.add(start, cells, row, tally)
            continue
        tally.rows += 1
        if row.email is None:
            if row.pos_id is None:
                tally.phone_only += 1
            elif row.phone is None:
                tally.pos_id_only += 1
        append((start, row))
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
            append = chunk.append
    if chunk:
        yield chunk


_DONE = object()


# While an import's threads run: how long the reader may hold the GIL before a thread whose
# query has returned takes it (CPython's default is 5 ms). Every round trip of the import's
# connections waited up to that long behind the reader's parsing; at 0.5 ms both imports ran
# faster (interleaved A/Bs of 300,000 rows, README "Importing customers" and "… history").
SWITCH_INTERVAL = 0.0005
_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.005


@contextmanager
def quick_handover() -> Iterator[None]:
    """The process's thread switch interval at SWITCH_INTERVAL for the block, then back as it
    was (it is one setting per process: nested or concurrent imports share it, and the last
    one out puts it back)."""
    global _switch_users, _switch_saved
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(SWITCH_INTERVAL, _switch_saved))
        _switch_users += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_saved)


def prefetched(chunks: Iterator[Any]) -> Generator[Any, None, None]:
    """The chunks, read one ahead in a thread: parsing the next chunk (Python, holding the
    GIL) overlaps the database's work on this one (a socket wait, which releases it). The
    reader touches no database; its exception is raised here, in the caller's thread. While
    it runs, a thread whose query has returned gets the GIL back quickly (quick_handover)."""
    with quick_handover():
        yield from _prefetched(chunks)


def _prefetched(chunks: Iterator[Any]) -> Iterator[Any]:
    ahead: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand_over(item: Any) -> bool:
        # Never blocks past the caller's end: a caller that stopped takes nothing more.
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for chunk in chunks:
                if not hand_over(chunk):
                    return
            hand_over(_DONE)
        except BaseException as exc:  # handed to the caller
            hand_over(exc)

    reader = threading.Thread(target=read, name="import-reader", daemon=True)
    reader.start()
    try:
        while (item := ahead.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def import_customers(
    *, batch: ImportBatch, progress: Progress | None = None, now: datetime | None = None
) -> ImportBatch:
    """Run a queued customers batch over its stored file; returns the batch, done or failed.

    A bad row is rejected alone (line and reason); a file that cannot be read at all (not
    UTF-8, no identifying column) fails the batch with its error.
    """
    if batch.kind != ImportKind.CUSTOMERS:
        raise ValueError(f"Batch {batch.pk} is a {batch.kind} import (imports.history runs it).")
    now = now or timezone.now()
    with claimed_batch(batch, now) as claimed:
        if not claimed:  # a duplicate delivery while it runs, or a batch already finished
            batch.refresh_from_db()
            return batch
        return _import_claimed(batch, progress, now)


@contextmanager
def claimed_batch(batch: ImportBatch, now: datetime) -> Iterator[bool]:
    """Claim a batch to run, customers or history, for as long as the block runs: True if
    this run has it. A batch still "running" whose lock is free lost its worker (the lock went
    with its connection): it is run again from the top, which adds nothing twice."""
    with _running(batch.pk) as ours:
        claimable = [ImportStatus.QUEUED, ImportStatus.RUNNING] if ours else [ImportStatus.QUEUED]
        if _is_postgresql() and not ours:
            claimable = []  # another worker holds it
        claimed = ImportBatch.objects.filter(pk=batch.pk, status__in=claimable).update(
            status=ImportStatus.RUNNING, started_at=now
        )
        if claimed:
            batch.status, batch.started_at = ImportStatus.RUNNING, now
        yield bool(claimed)


@contextmanager
def _running(batch_id: int) -> Iterator[bool]:
    """The batch's own session lock, held while it runs: True if this run holds it. On
    SQLite (one process, no such locks) only a queued batch is claimed.

    Behind a transaction pooler this lock, the customers import's and the TEMP staging
    tables would stay on whichever server connection ran the statement, and the run's next
    transaction would land on another: an import refuses to start there (cxcore.settings,
    DATABASE_POOLER; the import queue's worker connects to PostgreSQL itself)."""
    if getattr(settings, "DATABASE_POOLER", ""):
        raise ImproperlyConfigured(
            "Imports need a direct connection to PostgreSQL, not DATABASE_POOLER="
            f"{settings.DATABASE_POOLER}: run the import worker (queue {settings.IMPORT_QUEUE!r})"
            " and import commands with DATABASE_URL at PostgreSQL itself."
        )
    if not _is_postgresql():
        yield False
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [0x1A8, batch_id])
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [0x1A8, batch_id])


def _import_claimed(batch: ImportBatch, progress: Progress | None, now: datetime) -> ImportBatch:
    organization = batch.organization
    tally = Tally()
    try:
        with open_csv(batch.upload_path) as handle:
            reader = csv.reader(handle)
            headers = next(reader, None) or []
            try:
                fields = column_fields(headers, format=batch.format, column_map=batch.column_map)
            except MappingError as exc:
                raise InvalidInput(str(exc), field=exc.field) from exc
            rejections = _Rejections(batch, headers)
            try:
                if batch.dry_run:
                    _run_dry(batch, reader, fields, rejections, tally, progress, now)
                else:
                    _run(batch, reader, fields, rejections, tally, progress, now)
            finally:
                rejections.close()
    except (InvalidInput, UnicodeDecodeError, csv.Error, OSError) as exc:
        message = exc.message if isinstance(exc, InvalidInput) else _read_error(exc)
        _finish(batch, tally, status=ImportStatus.FAILED, error=message)
        return batch
    except Exception:
        # Not left "running" for ever: what landed before is recorded, so it can be undone.
        _finish(batch, tally, status=ImportStatus.FAILED, error="The import stopped on an error.")
        raise
    # The batch's end and its line in the team history land together.
    with transaction.atomic():
        _finish(batch, tally, status=ImportStatus.DONE)
        if not batch.dry_run:
            counts = tally.counts()
            record_team_event(
                organization=organization,
                actor=batch.created_by,
                action=TeamAction.IMPORTED,
                subject_label=batch.file_name,
                batch=batch.pk,
                kind=batch.kind,
                counts={name: counts[name] for name in ("rows", "new", "matched", "rejected")},
            )
    return batch


def _read_error(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "The file is not UTF-8 text (save it from the spreadsheet as CSV UTF-8)."
    if isinstance(exc, csv.Error):
        return f"The file is not a CSV file: {exc}."
    return f"The file could not be read: {exc}."


def _finish(batch: ImportBatch, tally: Tally, *, status: str, error: str = "") -> None:
    batch.status = status
    batch.error = error
    batch.counts = tally.counts()
    if not batch.dry_run:
        # What the batch did, from its own records: right after a run resumed from the top too.
        done = dict(
            ImportedObject.objects.filter(batch=batch)
            .values("kind")
            .annotate(n=Count("id"))
            .values_list("kind", "n")
        )
        batch.counts.update(
            new=customers_created(batch),
            identifiers_added=done.get(ImportedKind.IDENTIFIER_ADDED, 0),
            notes_appended=done.get(ImportedKind.NOTE_APPENDED, 0),
            consent_set=done.get(ImportedKind.CONSENT_SET, 0),
            names_set=done.get(ImportedKind.NAME_SET, 0),
        )
        accepted = batch.counts["rows"] - batch.counts["rejected"]
        batch.counts["matched"] = max(accepted - batch.counts["new"], 0)
    batch.first_rejections = tally.first_rejections
    batch.rows_done = tally.rows
    if status == ImportStatus.DONE:
        batch.rows_total = tally.rows
    batch.finished_at = timezone.now()
    batch.save(
        update_fields=[
            "status",
            "error",
            "counts",
            "first_rejections",
            "rows_done",
            "rows_total",
            "finished_at",
            "rejected_path",
        ]
    )


def _is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def _run(
    batch: ImportBatch,
    reader: Any,
    fields: dict[int, str],
    rejections: _Rejections,
    tally: Tally,
    progress: Progress | None,
    now: datetime,
) -> None:
    """Each chunk in its own transaction: what landed is recorded for undo and visible. On
    PostgreSQL, outside any transaction, more connections share each chunk's writes
    (customer_chunks.PartWriters)."""
    country = batch.organization.country
    # A file of one chunk has nothing to overlap: the extra connections would only cost.
    parallel = _is_postgresql() and not connection.in_atomic_block and batch.rows_total > CHUNK_ROWS
    writer = PartWriters() if parallel else None
    try:
        with _import_lock(batch.organization_id):
            chunks = _read_chunks(reader, fields, country, rejections, tally)
            for chunk, payload in prefetched(_with_payloads(chunks)):
                with transaction.atomic():
                    _apply_chunk(batch, chunk, tally, now, payload=payload, writer=writer)
                    ImportBatch.objects.filter(pk=batch.pk).update(
                        rows_done=tally.rows, counts=tally.counts()
                    )
                if progress:
                    progress(tally.rows)
    finally:
        if writer is not None:
            writer.close()
    if progress:
        progress(tally.rows)


def _run_dry(
    batch: ImportBatch,
    reader: Any,
    fields: dict[int, str],
    rejections: _Rejections,
    tally: Tally,
    progress: Progress | None,
    now: datetime,
) -> None:
    """The whole file in one transaction, rolled back: the counts are real, nothing stays.
    Progress goes through a second connection, which sees it while this one holds its
    transaction (on SQLite, which would lock, it is shown at the end)."""
    country = batch.organization.country
    side = side_connection()
    try:
        with transaction.atomic():
            chunks = _read_chunks(reader, fields, country, rejections, tally)
            for chunk, payload in prefetched(_with_payloads(chunks)):
                _apply_chunk(batch, chunk, tally, now, record=False, payload=payload)
                if side is not None:
                    with side.cursor() as cursor:
                        cursor.execute(
                            "UPDATE imports_importbatch SET rows_done = %s WHERE id = %s",
                            [tally.rows, batch.pk],
                        )
                if progress:
                    progress(tally.rows)
            transaction.set_rollback(True)
    finally:
        if side is not None:
            side.close()
    if progress:
        progress(tally.rows)


def side_connection() -> Any:
    if not _is_postgresql():
        return None
    return connections.create_connection("default")


@contextmanager
def _import_lock(organization_id: int) -> Iterator[None]:
    """One customers import per organization at a time: two would race for the same new
    identifiers and leave a customer with none (the session lock spans the chunks'
    transactions)."""
    if not _is_postgresql():
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [IMPORT_LOCK, organization_id])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [IMPORT_LOCK, organization_id])


def _with_payloads(
    chunks: Iterator[list[tuple[int, CustomerRow]]],
) -> Iterator[tuple[list[tuple[int, CustomerRow]], StagePayload | None]]:
    """Each chunk with its COPY text (PostgreSQL), built where the chunk is read: in the
    reader thread, beside the database's work on the chunk before."""
    postgresql = _is_postgresql()
    for chunk in chunks:
        yield chunk, stage_payload(chunk) if postgresql else None


def _apply_chunk(
    batch: ImportBatch,
    chunk: Sequence[tuple[int, CustomerRow]],
    tally: Tally,
    now: datetime,
    *,
    record: bool = True,
    payload: StagePayload | None = None,
    writer: PartWriters | None = None,
) -> None:
    if _is_postgresql():
        apply_chunk_pg(batch, chunk, tally, now, record=record, payload=payload, writer=writer)
    else:
        apply_chunk_plain(batch, chunk, tally, now, record=record)


def rejected_rows_path(batch: ImportBatch) -> str:
    """The rejected rows' CSV, if the batch wrote one and it is still there."""
    return (
        batch.rejected_path if batch.rejected_path and os.path.exists(batch.rejected_path) else ""
    )

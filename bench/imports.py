"""Importing a Square customer export, beside a bare COPY of the same file; then the history
import's figures (bench/imports_history.py), when that module is there.

A Square customer export of `rows` people is written to a temp file (names, phones valid for
GB, emails for most, Square customer ids for all, a memo for one in five, the address columns
Square exports, one in a hundred rows a repeat of an earlier person in other formats). Ours is
`import_customers` on it for a fresh organization with a batch, as the page and the command
run it (parse, normalise, COPY into staging, the set-based writes and the undo records); the
floor is a bare `COPY … FROM STDIN (FORMAT csv, HEADER)` of the same file into an unlogged
table of text columns, in the same run. The organization is dropped afterwards (not timed).
"""

from __future__ import annotations

import csv
import importlib
import os
import random
import tempfile
import time
from pathlib import Path

from django.db import DatabaseError, connection, transaction

from accounts.models import Organization

ROWS = {"full": 1_000_000, "small": 100_000, "tiny": 5_000}
ORG_SLUG = "bench-customer-import"
HEADER = [
    "First Name", "Last Name", "Email Address", "Phone Number", "Nickname", "Company Name",
    "Street Address 1", "Street Address 2", "City", "State", "Postal Code", "Birthday",
    "Memo", "Square Customer ID", "Reference ID", "First Visit", "Last Visit",
    "Transaction Count", "Email Subscription Status", "Instant Profile",
]  # fmt: skip
FIRST = ["Margaret", "Dan", "Zoë", "Priya", "Ana", "Kim", "Tom", "Łukasz", "Aisha", "Sam"]
LAST = ["Oakes", "Reyes", "Shah", "Lima", "Ng", "Byrne", "Ångström", "Okafor", "Moss", "Li"]
SUBSCRIPTION = ["subscribed", "unsubscribed", "", "Not subscribed"]


def drop_organization(slug: str = ORG_SLUG) -> None:
    """The bench organization an import step made, set-based, children first: the ORM's
    cascade would load a million rows. Both import steps use it."""
    org = Organization.objects.filter(slug=slug).first()
    if org is None:
        return
    with connection.cursor() as cur:
        cur.execute(
            "DELETE FROM imports_importedobject WHERE batch_id IN "
            "(SELECT id FROM imports_importbatch WHERE organization_id = %s)",
            [org.pk],
        )
        for table in ("cxcore_customeredit", "cxcore_episode", "cxcore_identifier",
                      "cxcore_customer"):  # fmt: skip
            cur.execute(f"DELETE FROM {table} WHERE organization_id = %s", [org.pk])
    org.delete()


def write_export(path: Path, rows: int, *, seed: int = 11) -> None:
    """A Square customer export of `rows` rows, with a byte-order mark and CRLF as Square's."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(HEADER)
        for n in range(rows):
            person = n if n % 100 or n == 0 else rng.randrange(n)  # 1% repeats
            first, last = FIRST[person % 10], LAST[(person // 10) % 10]
            # 07400 000000 … 07400 999999: a valid GB mobile for each of a million people.
            phone = f"07400 {person % 1_000_000:06d}"
            if n % 100 == 0 and n:
                phone = "+44" + phone[1:].replace(" ", "")
            email = f"guest.{person}@example.com" if person % 4 else ""
            writer.writerow(
                [first, last, email.upper() if n % 100 == 0 else email, phone, "", "",
                 f"{person % 300} High St", "", "Leeds", "", "LS1 1AA", "",
                 "Oat flat white, no sugar" if person % 5 == 0 else "", f"SQ{person:09d}", "",
                 "2024-01-03", "2026-11-20", str(person % 90), SUBSCRIPTION[person % 4], "No"]
            )  # fmt: skip


def copy_floor(path: Path) -> float:
    """Rows per second of a bare COPY of the file into an unlogged table of text columns."""
    columns = ", ".join(f"c{i} text" for i in range(len(HEADER)))
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_customer_floor")
        cur.execute(f"CREATE UNLOGGED TABLE bench_customer_floor ({columns})")
        try:
            started = time.perf_counter()
            with (
                path.open("rb") as handle,
                cur.copy("COPY bench_customer_floor FROM STDIN (FORMAT csv, HEADER)") as copy,
            ):
                handle.read(3)  # the byte-order mark, which COPY would keep in the first cell
                while chunk := handle.read(1 << 20):
                    copy.write(chunk)
            seconds = time.perf_counter() - started
            cur.execute("SELECT count(*) FROM bench_customer_floor")
            (copied,) = cur.fetchone()
        finally:
            cur.execute("DROP TABLE IF EXISTS bench_customer_floor")
    return copied / seconds


def settle() -> None:
    """Write out what the set-up left dirty (the data set's generation, the organization
    just dropped or created) before a clock starts: a checkpoint it triggered mid-import
    would charge that write to the figure. Skipped where the role may not checkpoint."""
    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("CHECKPOINT")
    except DatabaseError:
        pass


def customers(scale: str, log=print) -> dict:
    from imports.services import create_customer_batch, import_customers

    rows = ROWS[scale]
    drop_organization()
    org = Organization.objects.create(
        name="Bench customer import", slug=ORG_SLUG, country="GB", time_zone="Europe/London"
    )
    handle, name = tempfile.mkstemp(suffix=".csv", prefix="export-")
    os.close(handle)
    path = Path(name)
    try:
        write_export(path, rows)
        log(f"customer import: {rows:,} rows, {path.stat().st_size:,} B")
        settle()
        floor_rate = copy_floor(path)
        batch = create_customer_batch(
            organization=org, path=path, file_name=path.name, format="square"
        )
        settle()
        started = time.perf_counter()
        batch = import_customers(batch=batch)
        seconds = time.perf_counter() - started
        if batch.status != "done" or batch.counts.get("rejected"):
            raise RuntimeError(f"customer import: {batch.counts}, {batch.first_rejections[:3]}")
        ours = rows / seconds
        counts = batch.counts
    finally:
        path.unlink(missing_ok=True)
        drop_organization()
    return {
        "what": f"customer import, Square export ({rows:,} rows)",
        "ours": {
            "rows_per_s": round(ours),
            "seconds": round(seconds, 1),
            "new": counts["new"],
            "matched": counts["matched"],
        },
        "floor": {"rows_per_s": round(floor_rate), "how": "COPY of the file, unlogged"},
        "ratio": round(ours / floor_rate, 3) if floor_rate else None,
        "target": "≥ 20,000 rows/s",
        "met": ours >= 20_000,
    }


def measure(bench, log=print) -> list[dict]:
    """The `imports` step: customers, then history if bench/imports_history.py provides
    `measure(scale, log)`."""
    scale = bench.scale.name
    rows = [customers(scale, log)]
    try:
        history = importlib.import_module("bench.imports_history")
    except ImportError:
        history = None
    if history is not None and hasattr(history, "measure"):
        rows.append(history.measure(scale, log))
    return rows

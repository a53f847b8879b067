"""Importing a Square transactions export, beside a bare COPY of the same file.

A fresh organization gets `rows / 10` customers with Square customer ids (set-based, not
timed); a transactions export of `rows` completed payments over them (about ten visits each,
one in twenty a refund) is written to a temp file. Ours is `import_history` on it (parse,
COPY into staging, the set-based writes, the touched narratives folded in SQL); the floor is a
bare `COPY … FROM STDIN (FORMAT csv, HEADER)` of the same file into an unlogged table of text
columns, in the same run. The organization is dropped afterwards (not timed).
"""

from __future__ import annotations

import csv
import os
import random
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from django.db import connection, transaction

from accounts.models import Location, Organization
from bench.imports import drop_organization, settle
from cxcore.models import Customer

ROWS = {"full": 1_000_000, "small": 100_000, "tiny": 5_000}
ORG_SLUG = "bench-history-import"
HEADER = [
    "Date", "Time", "Time Zone", "Gross Sales", "Discounts", "Net Sales", "Tip",
    "Total Collected", "Source", "Transaction ID", "Payment ID", "Card Brand", "Device Name",
    "Event Type", "Location", "Customer ID", "Customer Name", "Refund Reason",
    "Transaction Status",
]  # fmt: skip


def _organization(customers: int) -> Organization:
    drop_organization(ORG_SLUG)
    org = Organization.objects.create(
        name="Bench history import", slug=ORG_SLUG, country="GB", time_zone="Europe/London"
    )
    Location.objects.create(organization=org, name="Main St", slug="main-st")
    with transaction.atomic():
        # The ORM, so the customer's columns (and their defaults) are never listed here.
        for first in range(1, customers + 1, 10_000):
            Customer.objects.bulk_create(
                Customer(organization=org, name=f"Customer {n}")
                for n in range(first, min(first + 10_000, customers + 1))
            )
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "INSERT INTO cxcore_identifier (organization_id, customer_id, kind, value, "
            "created_at) SELECT %s, id, 'pos_id', 'SQ-' || (id - min(id) OVER () + 1), now() "
            "FROM cxcore_customer WHERE organization_id = %s",
            [org.pk, org.pk],
        )
    return org


def write_export(path: Path, rows: int, customers: int, *, seed: int = 13) -> None:
    """A Square transactions export of `rows` completed payments (1 in 20 a refund)."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 6, 7, 0)
    span = timedelta(days=300).total_seconds()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(rows):
            at = start + timedelta(seconds=rng.random() * span)
            pence = rng.randint(180, 2400)
            refund = n % 20 == 19
            money = f"{'-' if refund else ''}£{pence // 100}.{pence % 100:02d}"
            writer.writerow(
                [
                    f"{at:%Y-%m-%d}", f"{at:%H:%M:%S}", "London", money, "£0.00", money,
                    "£0.00", money, "Point of Sale", f"TX{n:09d}", f"P{n:09d}", "Visa",
                    "Till 1", "Refund" if refund else "Payment", "Main St",
                    f"SQ-{rng.randint(1, customers)}", "", "Latte was cold" if refund else "",
                    "Complete",
                ]
            )  # fmt: skip


def copy_floor(path: Path) -> float:
    """Rows per second of a bare COPY of the file into an unlogged table of text columns."""
    columns = ", ".join(f"c{i} text" for i in range(len(HEADER)))
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_history_floor")
        cur.execute(f"CREATE UNLOGGED TABLE bench_history_floor ({columns})")
        try:
            started = time.perf_counter()
            with (
                path.open("rb") as handle,
                cur.copy("COPY bench_history_floor FROM STDIN (FORMAT csv, HEADER)") as copy,
            ):
                while chunk := handle.read(1 << 20):
                    copy.write(chunk)
            seconds = time.perf_counter() - started
            cur.execute("SELECT count(*) FROM bench_history_floor")
            (copied,) = cur.fetchone()
        finally:
            cur.execute("DROP TABLE IF EXISTS bench_history_floor")
    return copied / seconds


def measure(scale: str, log=print) -> dict:
    """The figures row for the results table: ours and the COPY floor in rows/s."""
    from imports.history import import_history
    from imports.models import ImportBatch

    rows = ROWS[scale]
    customers = max(rows // 10, 10)
    org = _organization(customers)
    handle, name = tempfile.mkstemp(suffix=".csv", prefix="square-transactions-")
    os.close(handle)
    path = Path(name)
    try:
        write_export(path, rows, customers)
        log(
            f"history import: {rows:,} rows over {customers:,} customers, {path.stat().st_size:,} B"
        )
        settle()
        floor_rate = copy_floor(path)
        # With a batch, as the page and the command run it: the undo records are written too.
        batch = ImportBatch.objects.create(
            organization=org, kind="history", format="square-transactions", file_name=path.name
        )
        settle()
        started = time.perf_counter()
        result = import_history(organization=org, path=path, fmt="square-transactions", batch=batch)
        seconds = time.perf_counter() - started
        if result.counts["episodes"] != rows or result.rejections:
            raise RuntimeError(f"history import: {result.counts}, {result.first_rejections}")
        ours = rows / seconds
    finally:
        path.unlink(missing_ok=True)
        drop_organization(ORG_SLUG)
    return {
        "what": f"history import, Square transactions ({rows:,} rows)",
        "ours": {"rows_per_s": round(ours), "seconds": round(seconds, 1)},
        "floor": {"rows_per_s": round(floor_rate), "how": "COPY of the file, unlogged"},
        "ratio": round(ours / floor_rate, 3) if floor_rate else None,
        "target": "≥ 20,000 rows/s",
        "met": ours >= 20_000,
    }

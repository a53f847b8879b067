"""What the two import commands share: finding their organization, location and file, the
progress bar, and the report at the end (its labels are the upload page's too)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from django.core.management.base import CommandError, OutputWrapper
from tqdm import tqdm  # type: ignore[import-untyped]  # tqdm ships no stubs

from accounts.models import Location, Organization
from imports.models import ImportBatch, ImportStatus

CUSTOMER_SUMMARY = (
    ("rows", "rows read"),
    ("new", "new customers"),
    ("matched", "matched a known customer"),
    ("phone_only", "phone only"),
    ("pos_id_only", "Square customer id only"),
    ("identifiers_added", "identifiers added to known customers"),
    ("notes_appended", "memos appended to notes"),
    ("names_set", "names filled in"),
    ("consent_set", "consents changed"),
    ("rejected", "rejected"),
)
HISTORY_SUMMARY = (
    ("rows", "rows read"),
    ("episodes", "episodes created"),
    ("refunds", "of them refunds (candidate incidents)"),
    ("items_set", "episodes given their items"),
    ("already_imported", "already imported"),
    ("repeated_rows", "repeated rows"),
    ("no_customer", "without a customer (skipped)"),
    ("not_completed", "not completed (skipped)"),
    ("refund_line", "refunded item lines (skipped)"),
    ("rejected", "rejected"),
)


def command_target(
    *, org: str, location: str | None, file: Path
) -> tuple[Organization, Location | None]:
    """The organization and (active) location named by slug, and a file that is there; a
    CommandError naming the argument otherwise."""
    organization = Organization.objects.filter(slug=org).first()
    if organization is None:
        raise CommandError(f"--org: No organization {org!r}.")
    found = None
    if location:
        found = Location.objects.filter(
            organization=organization, slug=location, is_active=True
        ).first()
        if found is None:
            raise CommandError(f"--location: No location {location!r} in {org}.")
    if not file.is_file():
        raise CommandError(f"FILE: No file {file}.")
    return organization, found


def run_with_progress(batch: ImportBatch, run: Callable[..., ImportBatch]) -> ImportBatch:
    """Run the batch with a progress bar on stderr (its total: the batch's row estimate); a
    failed batch is a CommandError with its reason."""
    with tqdm(total=batch.rows_total, unit=" rows", file=sys.stderr) as bar:
        batch = run(batch=batch, progress=lambda done: bar.update(done - bar.n))
        bar.update(batch.rows_done - bar.n)
    if batch.status == ImportStatus.FAILED:
        raise CommandError(batch.error)
    return batch


def write_report(
    out: OutputWrapper,
    batch: ImportBatch,
    summary: tuple[tuple[str, str], ...],
    rejected_label: str,
) -> None:
    """The counts that are not zero, the first rejections, and where the rest are (each
    write is a line: the command's OutputWrapper ends it)."""
    out.write("Dry run: nothing was written." if batch.dry_run else f"Imported (batch {batch.pk}).")
    for key, label in summary:
        if batch.counts.get(key):
            out.write(f"  {batch.counts[key]:>9,} {label}")
    for rejection in batch.first_rejections:
        out.write(f"  line {rejection['line']}: {rejection['reason']}")
    rejected = batch.counts.get("rejected", 0)
    if rejected > len(batch.first_rejections):
        out.write(f"  … and {rejected - len(batch.first_rejections):,} more")
    if batch.rejected_path:
        out.write(f"{rejected_label} {batch.rejected_path}")

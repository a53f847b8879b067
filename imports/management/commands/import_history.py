"""`manage.py import_history FILE --org SLUG --format square-transactions|square-items`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm  # type: ignore[import-untyped]  # tqdm ships no stubs

from accounts.models import Location, Organization
from imports.history import count_rows, create_history_batch, run_history_batch
from imports.history_formats import HISTORY_FORMATS
from imports.models import ImportStatus

SUMMARY = (
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


class Command(BaseCommand):
    help = "Import a Square transactions or item-details export into an organization's history."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--org", required=True, help="The organization's slug.")
        parser.add_argument("--format", required=True, choices=HISTORY_FORMATS, dest="fmt")
        parser.add_argument(
            "--location", help="Put every row at this location (its slug), whatever it says."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would happen; write nothing."
        )

    def handle(self, *args: Any, file: Path, org: str, fmt: str, **options: Any) -> None:
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization {org!r}.")
        location = None
        if options.get("location"):
            location = Location.objects.filter(
                organization=organization, slug=options["location"], is_active=True
            ).first()
            if location is None:
                raise CommandError(f"No location {options['location']!r} in {org}.")
        if not file.is_file():
            raise CommandError(f"No file {file}.")
        # A batch, as the upload page makes: the import is in the team history and can be
        # undone from the page for 30 days.
        batch = create_history_batch(
            organization=organization,
            path=file.resolve(),
            file_name=file.name,
            fmt=fmt,
            location=location,
            dry_run=options["dry_run"],
        )
        with tqdm(total=count_rows(file), unit=" rows", file=sys.stderr) as bar:
            batch = run_history_batch(batch=batch, progress=lambda done: bar.update(done - bar.n))
            bar.update(batch.rows_done - bar.n)
        if batch.status == ImportStatus.FAILED:
            raise CommandError(batch.error)
        heading = (
            "Dry run: nothing was written." if batch.dry_run else f"Imported (batch {batch.pk})."
        )
        self.stdout.write(heading)
        for key, label in SUMMARY:
            if batch.counts.get(key):
                self.stdout.write(f"  {batch.counts[key]:>9,} {label}")
        for rejection in batch.first_rejections:
            self.stdout.write(f"  line {rejection['line']}: {rejection['reason']}")
        rejected = batch.counts.get("rejected", 0)
        if rejected > len(batch.first_rejections):
            self.stdout.write(f"  … and {rejected - len(batch.first_rejections):,} more")
        if batch.rejected_path:
            self.stdout.write(f"The rejected rows, with their reasons: {batch.rejected_path}")

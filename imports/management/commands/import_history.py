"""`manage.py import_history FILE --org SLUG --format square-transactions|square-items`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from imports.commands import HISTORY_SUMMARY, command_target, run_with_progress, write_report
from imports.history import create_history_batch, run_history_batch
from imports.history_formats import HISTORY_FORMATS


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
        organization, location = command_target(
            org=org, location=options.get("location"), file=file
        )
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
        batch = run_with_progress(batch, run_history_batch)
        write_report(self.stdout, batch, HISTORY_SUMMARY, "The rejected rows, with their reasons:")

"""`manage.py import_customers FILE --org SLUG [--format square|generic] [--map COLUMN=field …]
[--location SLUG] [--dry-run]`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm  # type: ignore[import-untyped]  # tqdm ships no stubs

from accounts.errors import InvalidInput
from accounts.models import Location, Organization
from imports.formats import CUSTOMER_FIELDS, MappingError, parse_map_arguments
from imports.models import ImportStatus
from imports.services import CUSTOMER_FORMATS, create_customer_batch, import_customers

SUMMARY = (
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


class Command(BaseCommand):
    help = "Import customers from a Square customer export or another CSV file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--org", required=True, help="The organization's slug.")
        parser.add_argument(
            "--format", default="square", choices=[str(f) for f in CUSTOMER_FORMATS], dest="fmt"
        )
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="COLUMN=field",
            help="For --format generic: which column holds which field "
            f"({', '.join(CUSTOMER_FIELDS)}).",
        )
        parser.add_argument("--location", help="Record the batch as this location's (its slug).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would happen; write nothing."
        )

    def handle(self, *args: Any, file: Path, org: str, fmt: str, **options: Any) -> None:
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"--org: no organization {org!r}.")
        location = None
        if options.get("location"):
            location = Location.objects.filter(
                organization=organization, slug=options["location"], is_active=True
            ).first()
            if location is None:
                raise CommandError(f"--location: no location {options['location']!r} in {org}.")
        if not file.is_file():
            raise CommandError(f"FILE: no file {file}.")
        try:
            column_map = parse_map_arguments(options["map"])
        except MappingError as exc:
            raise CommandError(str(exc)) from exc
        if column_map and fmt != "generic":
            raise CommandError("--map: only --format generic takes a column map.")
        if fmt == "generic" and not column_map:
            raise CommandError("--map: --format generic needs COLUMN=field for each column.")
        try:
            batch = create_customer_batch(
                organization=organization,
                path=file.resolve(),
                file_name=file.name,
                format=fmt,
                column_map=column_map,
                location=location,
                dry_run=options["dry_run"],
            )
        except InvalidInput as exc:
            raise CommandError(f"{exc.field or 'FILE'}: {exc.message}") from exc
        with tqdm(total=batch.rows_total, unit=" rows", file=sys.stderr) as bar:
            batch = import_customers(batch=batch, progress=lambda done: bar.update(done - bar.n))
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
        if batch.rejected_path:
            self.stdout.write(f"Rejected rows: {batch.rejected_path}")

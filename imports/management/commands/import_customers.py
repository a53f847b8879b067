"""`manage.py import_customers FILE --org SLUG [--format square|generic] [--map COLUMN=field …]
[--location SLUG] [--dry-run]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.errors import InvalidInput
from imports.commands import CUSTOMER_SUMMARY, command_target, run_with_progress, write_report
from imports.formats import CUSTOMER_FIELDS, MappingError, parse_map_arguments
from imports.services import CUSTOMER_FORMATS, create_customer_batch, import_customers


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
        organization, location = command_target(
            org=org, location=options.get("location"), file=file
        )
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
        batch = run_with_progress(batch, import_customers)
        write_report(self.stdout, batch, CUSTOMER_SUMMARY, "Rejected rows:")

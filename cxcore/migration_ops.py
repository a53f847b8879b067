"""Index changes for migrations, without stopping a busy table's writes.

AlterField on a foreign key's `db_index` would also drop and re-validate the constraint (a
scan of the whole table under lock), and a plain CREATE INDEX blocks the table's writes while
it builds. `index_swap` drops and creates plain indexes, CONCURRENTLY on PostgreSQL (so the
migration must say `atomic = False`); put it in SeparateDatabaseAndState's
database_operations beside the state's AlterField. Django names an index the same on every
backend, so the same statements serve the embedded SQLite. Migrations import this module:
change what it does only in ways every migration using it still wants.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


def _concurrently(schema_editor: Any) -> str:
    return "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""


def _create(schema_editor: Any, name: str, table: str, column: str, where: str = "") -> None:
    schema_editor.execute(
        f'CREATE INDEX {_concurrently(schema_editor)}IF NOT EXISTS "{name}" '
        f'ON "{table}" ("{column}"){where}'
    )


def _drop(schema_editor: Any, name: str) -> None:
    schema_editor.execute(f'DROP INDEX {_concurrently(schema_editor)}IF EXISTS "{name}"')


def index_swap(
    *,
    dropped: dict[str, tuple[str, str]],
    created: dict[str, tuple[str, str, str]] | None = None,
) -> migrations.RunPython:
    """Drop `dropped` ({index: (table, column)}) and create `created` ({index: (table,
    column, " WHERE …" or "")}); reversed, the other way round."""
    created = created or {}

    def forwards(apps: Any, schema_editor: Any) -> None:
        for name in dropped:
            _drop(schema_editor, name)
        for name, spec in created.items():
            _create(schema_editor, name, *spec)

    def backwards(apps: Any, schema_editor: Any) -> None:
        for name in created:
            _drop(schema_editor, name)
        for name, (table, column) in dropped.items():
            _create(schema_editor, name, table, column)

    return migrations.RunPython(forwards, backwards)

# Each case write kept an index the composite ones make redundant: case_queue leads with the
# organization, case_trigger_once with the case.
# The database side only drops (and creates) the indexes, concurrently on PostgreSQL:
# AlterField would also drop and re-validate the foreign keys, a scan of the whole table under
# lock, and a plain CREATE INDEX would stop the table's writes while it builds. Django names an
# index the same on every backend, so the same statements serve the embedded SQLite.

import django.db.models.deletion
from django.db import migrations, models

DROPPED = {  # index: (table, column)
    "recovery_recoverycase_organization_id_8c75d6c2": ("recovery_recoverycase", "organization_id"),
    "recovery_casetrigger_case_id_b9fd2810": ("recovery_casetrigger", "case_id"),
}
CREATED = {  # index: (table, column, condition)
}


def _concurrently(schema_editor) -> str:
    # PostgreSQL builds and drops an index without blocking the table's writes, outside a
    # transaction (so the migration is not atomic); SQLite has no such word and needs none.
    return "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""


def _create(schema_editor, name, table, column, where=""):
    schema_editor.execute(
        f'CREATE INDEX {_concurrently(schema_editor)}IF NOT EXISTS "{name}" '
        f'ON "{table}" ("{column}"){where}'
    )


def _drop(schema_editor, name):
    schema_editor.execute(f'DROP INDEX {_concurrently(schema_editor)}IF EXISTS "{name}"')


def forwards(apps, schema_editor):
    for name in DROPPED:
        _drop(schema_editor, name)
    for name, spec in CREATED.items():
        _create(schema_editor, name, *spec)


def backwards(apps, schema_editor):
    for name in CREATED:
        _drop(schema_editor, name)
    for name, spec in DROPPED.items():
        _create(schema_editor, name, *spec)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0005_drift_drop_at_most_2"),
        ("recovery", "0007_holdout_share"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="casetrigger",
                    name="case",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="trigger_links",
                        to="recovery.recoverycase",
                    ),
                ),
                migrations.AlterField(
                    model_name="recoverycase",
                    name="organization",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="accounts.organization",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]

# Each event and delivery written kept an index the composite ones make redundant:
# webhook_event_list leads with the organization, webhook_delivery_log with the endpoint.
# The database side only drops (and creates) the indexes, concurrently on PostgreSQL:
# AlterField would also drop and re-validate the foreign keys, a scan of the whole table under
# lock, and a plain CREATE INDEX would stop the table's writes while it builds. Django names an
# index the same on every backend, so the same statements serve the embedded SQLite.

import django.db.models.deletion
from django.db import migrations, models

DROPPED = {  # index: (table, column)
    "webhooks_webhookevent_organization_id_0964f946": ("webhooks_webhookevent", "organization_id"),
    "webhooks_webhookdelivery_endpoint_id_d5bfb5c8": ("webhooks_webhookdelivery", "endpoint_id"),
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
        ("webhooks", "0001_outbox"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="webhookdelivery",
                    name="endpoint",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="deliveries",
                        to="webhooks.webhookendpoint",
                    ),
                ),
                migrations.AlterField(
                    model_name="webhookevent",
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

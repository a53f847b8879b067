# Each event and delivery written kept an index the composite ones make redundant:
# webhook_event_list leads with the organization, webhook_delivery_log with the endpoint. The
# database side only drops the indexes: AlterField would also drop and re-validate the foreign
# keys, a scan of the whole table under lock. Django names an index the same on every backend, so
# one statement serves PostgreSQL and the embedded SQLite.

import django.db.models.deletion
from django.db import migrations, models

DROPPED = {  # index: (table, column)
    "webhooks_webhookevent_organization_id_0964f946": ("webhooks_webhookevent", "organization_id"),
    "webhooks_webhookdelivery_endpoint_id_d5bfb5c8": ("webhooks_webhookdelivery", "endpoint_id"),
}


class Migration(migrations.Migration):
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
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}")',
                )
                for name, (table, column) in DROPPED.items()
            ],
        ),
    ]

# Each case write kept an index the composite ones make redundant: case_queue leads with the
# organization, case_trigger_once with the case. The database side only drops the indexes:
# AlterField would also drop and re-validate the foreign keys, a scan of the whole table under
# lock. Django names an index the same on every backend, so one statement serves PostgreSQL and
# the embedded SQLite.

import django.db.models.deletion
from django.db import migrations, models

DROPPED = {  # index: (table, column)
    "recovery_recoverycase_organization_id_8c75d6c2": ("recovery_recoverycase", "organization_id"),
    "recovery_casetrigger_case_id_b9fd2810": ("recovery_casetrigger", "case_id"),
}


class Migration(migrations.Migration):
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
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}")',
                )
                for name, (table, column) in DROPPED.items()
            ],
        ),
    ]

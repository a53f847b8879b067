# The customers a chunk of an import creates are one customer_list row now, not a row each;
# and an imported object's batch index goes: imported_object_batch_kind leads with the batch.
# (cxcore.migration_ops: why the index is dropped concurrently, beside the state's AlterField.)

import django.db.models.deletion
from django.db import migrations, models

from cxcore.migration_ops import index_swap


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("imports", "0002_episode_range"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="importedobject",
                    name="batch",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="imported",
                        to="imports.importbatch",
                    ),
                ),
            ],
            database_operations=[
                index_swap(
                    dropped={
                        "imports_importedobject_batch_id_731d7857": (
                            "imports_importedobject",
                            "batch_id",
                        ),
                    }
                )
            ],
        ),
        migrations.AlterField(
            model_name="importedobject",
            name="kind",
            field=models.CharField(
                choices=[
                    ("customer_created", "Customer created"),
                    ("identifier_added", "Identifier added"),
                    ("name_set", "Name set"),
                    ("note_appended", "Note appended"),
                    ("consent_set", "Consent set"),
                    ("episode_created", "Episode created"),
                    ("episode_range", "Episodes created (an id range)"),
                    ("customer_list", "Customers created (a list)"),
                ],
                max_length=16,
            ),
        ),
    ]

# Every episode write maintained ten indexes. organization and customer lead composite indexes
# (episode_org_occurred, episode_customer_timeline) that serve their lookups and cascades, so
# their own indexes go; the author columns, NULL on imported and connector episodes, are
# indexed where set. The customer's organization index goes too: customer_recently_seen leads
# with it, and the narrative's update of each episode wrote an entry to both.
# The database side only drops (and creates) the indexes, concurrently on PostgreSQL:
# AlterField would also drop and re-validate the foreign keys, a scan of the whole table under
# lock, and a plain CREATE INDEX would stop the table's writes while it builds. Django names an
# index the same on every backend, so the same statements serve the embedded SQLite.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

DROPPED = {  # index: (table, column)
    "cxcore_episode_author_api_key_id_9459ac4a": ("cxcore_episode", "author_api_key_id"),
    "cxcore_episode_author_user_id_e8f00ee8": ("cxcore_episode", "author_user_id"),
    "cxcore_episode_customer_id_eecdba84": ("cxcore_episode", "customer_id"),
    "cxcore_episode_organization_id_88e63b48": ("cxcore_episode", "organization_id"),
    "cxcore_customer_organization_id_7f6eb064": ("cxcore_customer", "organization_id"),
}
CREATED = {  # index: (table, column, condition)
    "episode_author_user": (
        "cxcore_episode",
        "author_user_id",
        ' WHERE "author_user_id" IS NOT NULL',
    ),
    "episode_author_api_key": (
        "cxcore_episode",
        "author_api_key_id",
        ' WHERE "author_api_key_id" IS NOT NULL',
    ),
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
        ("cxcore", "0007_drift_checked_until"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="episode",
                    name="author_api_key",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="accounts.apikey",
                    ),
                ),
                migrations.AlterField(
                    model_name="episode",
                    name="author_user",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="episode",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="episodes",
                        to="cxcore.customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="customer",
                    name="organization",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="customers",
                        to="accounts.organization",
                    ),
                ),
                migrations.AlterField(
                    model_name="episode",
                    name="organization",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="accounts.organization",
                    ),
                ),
                migrations.AddIndex(
                    model_name="episode",
                    index=models.Index(
                        condition=models.Q(("author_user__isnull", False)),
                        fields=["author_user"],
                        name="episode_author_user",
                    ),
                ),
                migrations.AddIndex(
                    model_name="episode",
                    index=models.Index(
                        condition=models.Q(("author_api_key__isnull", False)),
                        fields=["author_api_key"],
                        name="episode_author_api_key",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]

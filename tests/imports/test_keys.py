"""The part writers' foreign keys, checked by one lock a chunk in place of a trigger a row
(imports.keys)."""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, OperationalError, connection, connections, transaction

from cxcore.models import Customer
from imports import history, keys
from imports.models import ImportBatch, ImportKind
from tests.factories import CustomerFactory

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="triggers and row locks are PostgreSQL's"
)


def replication_role(cursor) -> str:
    cursor.execute("SHOW session_replication_role")
    return cursor.fetchone()[0]


# Every foreign key of the rows a part writer inserts, and what stands in for its trigger.
WRITTEN_KEYS = {
    # locked FOR KEY SHARE by key_triggers_skipped
    ("cxcore_customer", "organization_id", "accounts_organization"),
    ("cxcore_identifier", "organization_id", "accounts_organization"),
    ("imports_importedobject", "batch_id", "imports_importbatch"),
    # the customer the same statement created (invisible to others until the commit)
    ("cxcore_identifier", "customer_id", "cxcore_customer"),
    # NULL on a new customer (checked below)
    ("cxcore_customer", "last_experience_episode_id", "cxcore_episode"),
}


# A history chunk's new episodes (imports.history._INSERT_TRANSACTIONS).
EPISODE_KEYS = {
    # locked FOR KEY SHARE: the organization, and each of _CHUNK_REFERENCES
    ("cxcore_episode", "organization_id", "accounts_organization"),
    ("cxcore_episode", "location_id", "accounts_location"),
    # locked FOR KEY SHARE as the chunk's Square ids were found (_FIND_AND_LOCK_CUSTOMERS)
    ("cxcore_episode", "customer_id", "cxcore_customer"),
    # not among the columns it writes: NULL
    ("cxcore_episode", "author_user_id", "accounts_user"),
    ("cxcore_episode", "author_api_key_id", "accounts_apikey"),
}


def foreign_keys(*tables: str) -> set[tuple[str, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text
            FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
            WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY (%s)
            """,
            [list(tables)],
        )
        return set(cursor.fetchall())


def triggers_but_foreign_keys(*tables: str) -> list[tuple[str, str]]:
    """Replica mode silences every trigger of theirs, not only the keys' own: a user trigger,
    or a deferrable unique or exclusion constraint's internal one, would be lost with them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.tgrelid::regclass::text, t.tgname FROM pg_trigger t"
            " LEFT JOIN pg_constraint c ON c.oid = t.tgconstraint"
            " WHERE t.tgrelid::regclass::text = ANY (%s) AND c.contype IS DISTINCT FROM 'f'",
            [list(tables)],
        )
        return cursor.fetchall()


@pytest.mark.django_db
def test_a_history_chunks_episodes_point_only_at_what_it_locks():
    assert foreign_keys("cxcore_episode") == EPISODE_KEYS
    assert triggers_but_foreign_keys("cxcore_episode") == []
    written = {column.strip() for column in history._EPISODE_COLUMNS.split(",")}
    assert {"organization_id", "customer_id", "location_id"} <= written
    assert not written & {"author_user_id", "author_api_key_id"}
    assert dict(history._CHUNK_REFERENCES) == {
        "accounts_location": f"SELECT location_id FROM {history._WITH_CUSTOMER}",
    }
    # A chunk's customers are the ones found and locked: set from that statement's answer
    # (or the answers before it), never from another lookup.
    assert "FOR KEY SHARE OF c" in history._FIND_AND_LOCK_CUSTOMERS
    assert history._WITH_CUSTOMER in history._KNOWN  # the rows that become episodes


@pytest.mark.django_db
def test_the_rows_a_writer_inserts_point_only_at_what_it_locks_or_creates():
    """A foreign key added to these tables must be locked in imports.keys too (or the writer
    must keep its triggers): this test fails until it is."""
    tables = ("cxcore_customer", "cxcore_identifier", "imports_importedobject")
    assert foreign_keys(*tables) == WRITTEN_KEYS
    assert triggers_but_foreign_keys(*tables) == []
    assert Customer._meta.get_field("last_experience_episode").get_default() is None


@pytest.mark.django_db(transaction=True)
def test_the_writer_holds_the_rows_it_points_at_and_skips_triggers_for_its_transaction(org):
    batch = ImportBatch.objects.create(
        organization=org, kind=ImportKind.CUSTOMERS, format="square", file_name="export.csv"
    )
    other = connections.create_connection("default")
    try:
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            keys.key_triggers_skipped(cursor, organization_id=org.pk, batch_id=batch.pk) as skipped,
        ):
            assert skipped
            assert replication_role(cursor) == "replica"
            with other.cursor() as theirs:
                for table, pk in (
                    ("accounts_organization", org.pk),
                    ("imports_importbatch", batch.pk),
                ):
                    # A delete's lock waits for the writer's commit: refused here, not waited.
                    with pytest.raises(OperationalError, match="could not obtain lock"):
                        theirs.execute(
                            f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE NOWAIT", [pk]
                        )
                # An edit's lock does not wait.
                theirs.execute(
                    "SELECT 1 FROM accounts_organization WHERE id = %s FOR NO KEY UPDATE NOWAIT",
                    [org.pk],
                )
        with connection.cursor() as cursor:
            assert replication_role(cursor) == "origin"  # that transaction only
    finally:
        other.close()


@pytest.mark.django_db
def test_a_role_that_may_not_set_it_keeps_the_triggers_until_granted(org):
    role = f"comeback_plain_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        # Rolled back with the test's transaction, the role and its grants included.
        cursor.execute(f"CREATE ROLE {role} NOSUPERUSER")
        cursor.execute(f"GRANT SELECT, UPDATE ON accounts_organization TO {role}")  # KEY SHARE
        cursor.execute(f"SET LOCAL ROLE {role}")
        with keys.key_triggers_skipped(cursor, organization_id=org.pk) as skipped:
            assert not skipped
            assert replication_role(cursor) == "origin"

        cursor.execute("RESET ROLE")
        if connection.pg_version < 150000:  # type: ignore[attr-defined]
            return  # SET on a parameter can be granted from PostgreSQL 15
        cursor.execute(f"GRANT SET ON PARAMETER session_replication_role TO {role}")
        cursor.execute(f"SET LOCAL ROLE {role}")
        with keys.key_triggers_skipped(cursor, organization_id=org.pk) as skipped:
            assert skipped
            assert replication_role(cursor) == "replica"
        assert replication_role(cursor) == "origin"
        cursor.execute("RESET ROLE")


@pytest.mark.django_db
def test_a_referenced_row_that_is_gone_keeps_the_triggers_and_they_refuse_it(org):
    customer = CustomerFactory.create(organization=org)
    with connection.cursor() as cursor:
        # The control: the same call with rows that are there skips them.
        there = [("cxcore_customer", f"SELECT {customer.pk} UNION ALL SELECT NULL")]
        with keys.key_triggers_skipped(cursor, organization_id=org.pk, references=there) as ok:
            assert ok
        references = [("cxcore_customer", f"SELECT {customer.pk} UNION ALL SELECT 0")]
        with keys.key_triggers_skipped(
            cursor, organization_id=org.pk, references=references
        ) as skipped:
            assert not skipped
            assert replication_role(cursor) == "origin"
            with pytest.raises(IntegrityError), transaction.atomic():
                cursor.execute(
                    "INSERT INTO cxcore_identifier (organization_id, customer_id, kind, value,"
                    " created_at) VALUES (%s, 0, 'email', 'gone@example.com', now())",
                    [org.pk],
                )
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.mark.django_db
def test_an_error_in_the_block_leaves_the_triggers_on_once_its_savepoint_rolls_back(org):
    with connection.cursor() as cursor:
        with (
            pytest.raises(IntegrityError),
            transaction.atomic(),
            keys.key_triggers_skipped(cursor, organization_id=org.pk) as skipped,
        ):
            assert skipped
            cursor.execute(
                "INSERT INTO cxcore_identifier (organization_id, customer_id, kind, value,"
                " created_at) VALUES (%s, NULL, 'email', 'x@example.com', now())",
                [org.pk],
            )
        assert replication_role(cursor) == "origin"

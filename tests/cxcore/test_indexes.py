"""Every write pays for every index of its table: the tables each episode write touches carry
no index that another of the same table already makes redundant (its columns a leading prefix
of the other's), as Django's automatic foreign-key indexes are beside our composite ones."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

# Written on the hot paths: an episode, its customer's narrative, a case and its trigger, the
# webhook outbox.
HOT_TABLES = (
    "cxcore_episode",
    "cxcore_customer",
    "recovery_recoverycase",
    "recovery_casetrigger",
    "webhooks_webhookevent",
    "webhooks_webhookdelivery",
)

# Full (not partial) indexes, their key columns in order; unique ones are constraints, kept.
INDEXES = """
    SELECT t.relname, i.relname, x.indisunique, x.indkey::int2[]::int[]
    FROM pg_index x
    JOIN pg_class i ON i.oid = x.indexrelid
    JOIN pg_class t ON t.oid = x.indrelid
    WHERE t.relname = ANY(%s) AND x.indpred IS NULL
"""


def redundant_indexes(tables):
    with connection.cursor() as cur:
        cur.execute(INDEXES, [list(tables)])
        rows = cur.fetchall()
    found = []
    for table, name, unique, keys in rows:
        for other_table, other, _, other_keys in rows:
            covered = len(other_keys) > len(keys) and other_keys[: len(keys)] == keys
            if other_table == table and other != name and not unique and covered:
                found.append(f"{name} (covered by {other})")
    return sorted(found)


def test_the_hot_tables_keep_no_index_another_makes_redundant():
    assert redundant_indexes(HOT_TABLES) == []


# Each single-column foreign key, and whether an index leads with its column: a full one, or a
# partial one on "column IS NOT NULL" (the rows a cascade or a SET NULL looks for).
FOREIGN_KEYS = """
    SELECT t.relname, a.attname, EXISTS (
        SELECT 1 FROM pg_index x
        WHERE x.indrelid = c.conrelid AND x.indkey[0] = a.attnum
          AND (x.indpred IS NULL
               OR pg_get_expr(x.indpred, x.indrelid) = format('(%%I IS NOT NULL)', a.attname))
    )
    FROM pg_constraint c
    JOIN pg_class t ON t.oid = c.conrelid
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
    WHERE c.contype = 'f' AND t.relname = ANY(%s) AND cardinality(c.conkey) = 1
"""


def test_every_foreign_key_of_the_hot_tables_keeps_an_index_that_leads_with_it():
    # Dropping an index a composite one covers must never leave a foreign key without one:
    # deleting an organization, a customer or a case would scan the table for its rows.
    with connection.cursor() as cur:
        cur.execute(FOREIGN_KEYS, [list(HOT_TABLES)])
        keys = cur.fetchall()
    assert len(keys) >= 15  # the query sees the foreign keys at all
    assert [f"{table}.{column}" for table, column, indexed in keys if not indexed] == []


def test_the_check_finds_a_redundant_index():
    # The check itself: Django's own index on the customer's organization, put back.
    with connection.cursor() as cur:
        cur.execute("CREATE INDEX probe_customer_org ON cxcore_customer (organization_id)")
    assert redundant_indexes(["cxcore_customer"]) == [
        "probe_customer_org (covered by customer_recently_seen)"
    ]

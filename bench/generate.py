"""The benchmark's data set, loaded straight into PostgreSQL with set-based SQL.

One organization, its locations, N customers with a phone and an email, ~10 episodes each on
average over two years with a skewed history (most a handful, some regulars dozens, a few
thousands), ~5% negative, and an open recovery case for every customer whose last experience
was negative and never followed up (~10% of them; everyone else's last visit was rated
well). Three customers with exactly 1, 100 and 10,000 episodes serve the sidebar's flatness
figures; a set of customers is left due for the sweep figure.

The narrative state on each customer row is computed by the same one-pass SQL that is the
reconcile's floor (`NARRATIVE_SQL`), so the reconcile figure also checks it: it should repair
nothing but care due times, which the generator leaves to it.

Generation is reused while the fingerprint (scale, generator version, applied migrations)
matches; otherwise the database is dropped and made again.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import psycopg
from django.core.management import call_command
from django.db import connection

if TYPE_CHECKING:
    from django.db.backends.utils import CursorWrapper

GENERATOR_VERSION = 5
SPECIAL_HISTORIES = (1, 100, 10_000)  # the sidebar's customers, by episode count
ORG_SLUG = "bench"
OWNER_EMAIL = "owner@bench.example"
DRINKS = ("Flat white", "Oat latte", "Cappuccino", "Americano", "Mocha", "Chai latte", "Espresso")
FIRST = [
    "Ada",
    "Ben",
    "Chloe",
    "Dan",
    "Ella",
    "Finn",
    "Grace",
    "Hugo",
    "Isla",
    "Jack",
    "Kate",
    "Leo",
    "Maya",
    "Noah",
    "Olive",
    "Priya",
    "Quinn",
    "Ruby",
    "Sam",
    "Tara",
]
LAST = [
    "Reyes",
    "Chen",
    "Nair",
    "Smith",
    "Okafor",
    "Novak",
    "Silva",
    "Kim",
    "Murphy",
    "Haddad",
    "Jones",
    "Rossi",
    "Patel",
    "Berg",
    "Walsh",
    "Khan",
    "Costa",
    "Lund",
    "Price",
    "Young",
]


@dataclass(frozen=True)
class Scale:
    name: str
    customers: int
    locations: int
    due: int  # customers left due for the sweep
    runs: int  # samples per in-process figure
    http_seconds: int  # per HTTP load run
    bulk_batches: int  # bulk API requests of 1,000


SCALES = {
    "full": Scale("full", 1_000_000, 20, 10_000, 300, 10, 30),
    "small": Scale("small", 100_000, 20, 10_000, 300, 10, 30),
    "tiny": Scale("tiny", 1_500, 3, 20, 10, 3, 2),
}


def phone(customer_seq: int) -> str:
    """The E.164 phone of the generated customer number `customer_seq` (valid UK mobiles)."""
    return f"+44771{customer_seq:07d}"


def fingerprint(scale: Scale) -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
        migrations = cur.fetchall()
    text = repr((asdict(scale), GENERATOR_VERSION, migrations))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ensure_database(url: str) -> None:
    """Create the benchmark's database if it is missing (never touches another)."""
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    base, _, name = url.rpartition("/")
    connection.close()
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def stored_fingerprint() -> str | None:
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass('bench_meta')")
        if cur.fetchone()[0] is None:
            return None
        cur.execute("SELECT fingerprint FROM bench_meta")
        row = cur.fetchone()
    return row[0] if row else None


def prepare(scale: Scale, url: str, log) -> dict:
    """The data set for `scale`, generated unless an identical one is already there."""
    ensure_database(url)
    call_command("migrate", verbosity=0)
    if stored_fingerprint() == fingerprint(scale):
        log(f"reusing the {scale.name} data set")
        return {"generated": False, "seconds": 0.0}
    drop_database(url)
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    generate(scale, log)
    elapsed = time.perf_counter() - started
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE bench_meta (fingerprint text)")
        cur.execute("INSERT INTO bench_meta VALUES (%s)", [fingerprint(scale)])
    log(f"generated the {scale.name} data set in {elapsed:.0f} s")
    return {"generated": True, "seconds": round(elapsed, 1)}


# The narrative state of every customer from their episodes, in one set-based pass. The
# generator uses it to fill the rows, and the reconcile figure uses it as its floor.
NARRATIVE_SQL = """
    SELECT e.customer_id,
        min(e.occurred_at) AS first_seen_at,
        min(e.occurred_at) FILTER (WHERE e.kind IN ('visit', 'order')) AS first_visit_at,
        max(e.occurred_at) FILTER (WHERE e.kind IN ('visit', 'order')) AS last_visit_at,
        count(*) FILTER (WHERE e.kind IN ('visit', 'order')) AS visit_count,
        count(*) AS episode_count,
        max(e.occurred_at) FILTER (WHERE e.experience < 0) AS last_negative_at,
        max(e.occurred_at) FILTER (WHERE e.kind IN ('recovery', 'outreach')) AS last_follow_up_at,
        (array_agg(e.experience ORDER BY e.occurred_at DESC, e.id DESC)
            FILTER (WHERE e.experience IS NOT NULL))[1] AS last_experience,
        max(e.occurred_at) FILTER (WHERE e.experience IS NOT NULL) AS last_experience_at,
        (array_agg(e.id ORDER BY e.occurred_at DESC, e.id DESC)
            FILTER (WHERE e.experience IS NOT NULL))[1] AS last_experience_episode_id
    FROM cxcore_episode e {where}
    GROUP BY e.customer_id
"""


def _secondary_indexes(
    cur: CursorWrapper, tables: tuple[str, ...]
) -> list[tuple[str, str, str | None, str | None, str | None]]:
    """(name, how to create it, the constraint it backs, that constraint's table and
    definition) for every index but primary keys."""
    cur.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), con.conname,
            con.conrelid::regclass::text, pg_get_constraintdef(con.oid)
        FROM pg_index i LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid
            AND con.contype IN ('u', 'x')
        WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary
        """,
        [list(tables)],
    )
    return cur.fetchall()


def care_due_times(org) -> int:
    """Each customer's care due time by the rules' own care_due_at, as every write leaves it
    (the reconcile then finds nothing to repair there). Only regulars can have one."""
    from cxcore.bulk import update_rows
    from cxcore.models import Customer
    from cxcore.rules import CaseMarks, DuePolicy, NarrativeState, care_due_at

    policy, marks = DuePolicy.of(org), CaseMarks()
    columns = ("visit_count", "first_visit_at", "last_visit_at", "last_experience",
               "last_experience_at")  # fmt: skip
    rows = []
    for pk, *values in (
        Customer.objects.filter(organization=org, visit_count__gte=max(2, policy.care_min_visits))
        .values_list("pk", *columns)
        .iterator(chunk_size=20_000)
    ):
        due = care_due_at(NarrativeState(**dict(zip(columns, values, strict=True))), marks, policy)
        if due is not None:
            rows.append(Customer(pk=pk, care_due_at=due))
    for start in range(0, len(rows), 20_000):
        update_rows(Customer, rows[start : start + 20_000], ["care_due_at"])
    return len(rows)


def generate(scale: Scale, log) -> None:
    from accounts.models import Organization, Role, User
    from accounts.services import add_member, create_organization

    org = create_organization(
        name="Bench Coffee Co.",
        location_names=[f"Shop {n:02d}" for n in range(1, scale.locations + 1)],
        country="GB",
        time_zone="Europe/London",
    )
    Organization.objects.filter(pk=org.pk).update(slug=ORG_SLUG)
    owner = User.objects.create_user(email=OWNER_EMAIL, password=None)
    add_member(organization=org, user=owner, role=Role.OWNER)
    tables = ("cxcore_customer", "cxcore_identifier", "cxcore_episode", "recovery_recoverycase",
              "recovery_casetrigger", "recovery_caseaction", "recovery_caseevent")  # fmt: skip
    with connection.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '1GB'; SET work_mem = '256MB'")
        # A bulk load: rows are checked by construction, so foreign-key triggers are off for
        # the load and indexes are built once at the end rather than row by row.
        cur.execute("SET session_replication_role = replica")
        indexes = _secondary_indexes(cur, tables)
        for name, _, constraint, table, _ in indexes:
            if constraint:
                cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"')
            else:
                cur.execute(f"DROP INDEX {name}")
        _load(cur, scale, org.pk, log)
        log("building indexes")
        for _, definition, constraint, table, condef in indexes:
            if constraint:
                cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{constraint}" {condef}')
            else:
                cur.execute(definition)
        cur.execute("SET session_replication_role = DEFAULT")
        started = time.perf_counter()
        log(f"{care_due_times(org):,} care due times in {time.perf_counter() - started:.0f} s")
        for table in tables:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
            )
        # Django runs in autocommit here, which VACUUM needs; it sets the visibility map and
        # the planner's statistics, as autovacuum would in time.
        for table in tables:
            cur.execute(f"VACUUM ANALYZE {table}")
        # The load's gigabytes written out now, not by a checkpoint during the first figures
        # (the first run after a generation measured the imports 25-33 % slower than the next).
        cur.execute("CHECKPOINT")


def _load(cur, scale: Scale, org_id: int, log) -> None:
    cur.execute("SELECT setseed(0.42)")
    cur.execute(
        "SELECT array_agg(id ORDER BY id) FROM accounts_location WHERE organization_id = %s",
        [org_id],
    )
    locations = cur.fetchone()[0]
    heavy = max(1, scale.customers // 200_000)
    # The plan: how many episodes each customer has, where they usually go, what they drink,
    # whether their last experience was negative (→ an open case, or due for the sweep).
    cur.execute(
        """
        CREATE TEMP TABLE plan AS
        SELECT g AS seq, g AS customer_id,
            CASE
                WHEN g <= %(specials)s THEN (%(special_counts)s::int[])[g]
                WHEN g <= %(specials)s + %(heavy)s THEN 1000 + (random() * 4000)::int
                WHEN random() < 0.14 THEN 10 + (random() * 80)::int
                ELSE 1 + (random() * 5)::int
            END AS n,
            (%(locations)s::bigint[])[1 + (g %% %(location_count)s)] AS home,
            (%(drinks)s::text[])[1 + (g %% %(drink_count)s)] AS drink,
            g > %(specials)s AND random() < 0.10 AS last_negative,
            interval '3 hours' + random() * interval '60 days' AS last_gap
        FROM generate_series(1, %(customers)s) g
        """,
        {
            "specials": len(SPECIAL_HISTORIES),
            "special_counts": list(SPECIAL_HISTORIES),
            "heavy": heavy,
            "locations": locations,
            "location_count": len(locations),
            "drinks": list(DRINKS),
            "drink_count": len(DRINKS),
            "customers": scale.customers,
        },
    )
    # The special customers' last episode is a negative with an open case, so their sidebar
    # carries a prompt.
    cur.execute("UPDATE plan SET last_negative = true WHERE seq <= %s", [len(SPECIAL_HISTORIES)])
    cur.execute("ALTER TABLE plan ADD PRIMARY KEY (seq)")
    # The customers left due (a last negative, no case yet): spread over the table, on top
    # of the ~10% with open cases.
    cur.execute(
        """
        CREATE TABLE bench_due AS
        SELECT customer_id FROM plan WHERE NOT last_negative AND seq > %s
        ORDER BY md5(seq::text) LIMIT %s
        """,
        [len(SPECIAL_HISTORIES), scale.due],
    )
    cur.execute("ALTER TABLE bench_due ADD PRIMARY KEY (customer_id)")
    cur.execute(
        "UPDATE plan SET last_negative = true WHERE customer_id IN (SELECT * FROM bench_due)"
    )

    started = time.perf_counter()
    cur.execute(
        """
        INSERT INTO cxcore_episode (organization_id, customer_id, location_id, kind, occurred_at,
            recorded_at, source, external_id, summary, touchpoints, items, experience,
            experience_source, rating_scale)
        SELECT %(org)s, customer_id, location_id,
            CASE WHEN negative THEN (CASE WHEN r2 < 0.6 THEN 'complaint' ELSE 'feedback' END)
                 WHEN is_last OR r < 0.80 THEN 'visit' WHEN r < 0.88 THEN 'feedback'
                 WHEN r < 0.91 THEN 'compliment' WHEN r < 0.93 THEN 'outreach'
                 WHEN r < 0.95 THEN 'recovery' ELSE 'note' END,
            occurred_at, occurred_at, 'pos', '',
            CASE WHEN negative THEN 'Waited too long and the order was wrong' ELSE '' END,
            CASE WHEN negative THEN jsonb_build_array(jsonb_build_object(
                     'code', (%(touchpoints)s::text[])[1 + (r2 * 7)::int %% 7],
                     'third_party', r2 >= 0.8))
                 ELSE '[]'::jsonb END,
            CASE WHEN NOT negative AND (is_last OR r < 0.80)
                 THEN jsonb_build_array(jsonb_build_object(
                     'name', drink, 'quantity', 1, 'price', '3.40'))
                 ELSE '[]'::jsonb END,
            CASE WHEN negative THEN (CASE WHEN r2 < 0.2 THEN -2 ELSE -1 END)
                 WHEN is_last THEN 1
                 WHEN r >= 0.80 AND r < 0.88 THEN (CASE WHEN r2 < 0.5 THEN 0 ELSE 1 END)
                 WHEN r >= 0.88 AND r < 0.91 THEN 2 END,
            CASE WHEN negative OR is_last OR (r >= 0.80 AND r < 0.91) THEN 'explicit' ELSE ''
            END, ''
        FROM (
            SELECT p.customer_id, s = p.n AS is_last, random() AS r, random() AS r2, p.drink,
                CASE WHEN random() < 0.8 THEN p.home
                     ELSE (%(locations)s::bigint[])[1 + (random() * 1000)::int %% %(nloc)s]
                END AS location_id,
                CASE WHEN s = p.n THEN p.last_negative ELSE random() < 0.045 END AS negative,
                now() - p.last_gap
                    - interval '730 days' * ((p.n - s) + random() * 0.9) / p.n AS occurred_at
            FROM plan p CROSS JOIN LATERAL generate_series(1, p.n) s
        ) rows
        ORDER BY occurred_at
        """,
        {
            "org": org_id,
            "touchpoints": [
                "wait",
                "food_and_drink",
                "staff",
                "order_accuracy",
                "cleanliness",
                "parking_valet",
                "delivery",
            ],
            "locations": locations,
            "nloc": len(locations),
        },
    )
    log(f"{cur.rowcount:,} episodes in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    cur.execute(
        f"""
        INSERT INTO cxcore_customer (id, organization_id, name, notes, created_at, updated_at,
            first_seen_at, first_visit_at, last_visit_at, visit_count, total_spend, episode_count,
            last_experience, last_experience_at, last_experience_episode_id, last_negative_at,
            last_follow_up_at, usual_order, recovery_due_at, recovery_case_open,
            recovery_handled_until, care_case_open, marketing_email_consent,
            marketing_email_consent_source)
        SELECT p.customer_id, %(org)s,
            (%(first)s::text[])[1 + p.seq %% 20] || ' '
                || (%(last)s::text[])[1 + (p.seq / 20) %% 20],
            '', n.first_seen_at, now(), n.first_seen_at, n.first_visit_at, n.last_visit_at,
            n.visit_count, n.visit_count * 3.40, n.episode_count, n.last_experience,
            n.last_experience_at, n.last_experience_episode_id, n.last_negative_at,
            n.last_follow_up_at, CASE WHEN n.visit_count >= 2 THEN p.drink ELSE '' END,
            CASE WHEN d.customer_id IS NOT NULL THEN n.last_negative_at + interval '2 hours' END,
            p.last_negative AND d.customer_id IS NULL,
            CASE WHEN p.last_negative AND d.customer_id IS NULL THEN n.last_negative_at END, false,
            'unknown', ''
        FROM plan p JOIN ({NARRATIVE_SQL.format(where="")}) n ON n.customer_id = p.customer_id
        LEFT JOIN bench_due d ON d.customer_id = p.customer_id
        """,
        {"org": org_id, "first": list(FIRST), "last": list(LAST)},
    )
    log(f"{cur.rowcount:,} customers in {time.perf_counter() - started:.0f} s")
    cur.execute(
        """
        INSERT INTO cxcore_identifier (organization_id, customer_id, kind, value, created_at)
        SELECT %(org)s, customer_id, 'phone', '+44771' || lpad(seq::text, 7, '0'), now()
        FROM plan
        UNION ALL
        SELECT %(org)s, customer_id, 'email', 'guest' || seq || '@bench.example', now()
        FROM plan
        """,
        {"org": org_id},
    )
    started = time.perf_counter()
    cur.execute(
        """
        INSERT INTO recovery_recoverycase (organization_id, customer_id, location_id, kind, status,
            severity, touchpoints, worst_experience, show_at_visit, opened_at, ack_due_at, due_at,
            escalate_at, dismiss_reason, outcome, care_reason, why_now, held_out)
        SELECT %(org)s, c.id, e.location_id, 'recovery', 'open',
            CASE WHEN e.experience <= -2 THEN 3 WHEN c.id %% 17 = 0 THEN 1 ELSE 2 END
                + CASE WHEN c.id %% 97 = 0 THEN 1 ELSE 0 END,
            e.touchpoints, e.experience, true, e.occurred_at + interval '2 hours',
            e.occurred_at + interval '6 hours', e.occurred_at + interval '50 hours', NULL, '', '',
            '', '', false
        FROM cxcore_customer c JOIN cxcore_episode e ON e.id = c.last_experience_episode_id
        WHERE c.recovery_case_open
        """,
        {"org": org_id},
    )
    log(f"{cur.rowcount:,} open cases in {time.perf_counter() - started:.0f} s")
    cur.execute(
        """
        INSERT INTO recovery_casetrigger (case_id, episode_id, added_at)
        SELECT rc.id, c.last_experience_episode_id, rc.opened_at
        FROM recovery_recoverycase rc JOIN cxcore_customer c ON c.id = rc.customer_id;
        INSERT INTO recovery_caseaction (case_id, position, text)
        SELECT rc.id, a.position, a.text FROM recovery_recoverycase rc,
            (VALUES (0, 'Apologise for what went wrong'), (1, 'Offer their usual on the house'))
            AS a(position, text);
        INSERT INTO recovery_caseevent (case_id, type, at, data)
        SELECT id, 'opened', opened_at, '{}' FROM recovery_recoverycase;
        """
    )

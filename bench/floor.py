"""The floors: the same reads and writes as our hot paths, as the minimal hand-written SQL.

Used in-process through psycopg (`Floor`) and over HTTP through a bare DRF view
(`bench.urls`), so every figure has its limit measured in the same run on the same data.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction

IDENTIFY = (
    "SELECT customer_id FROM cxcore_identifier "
    "WHERE organization_id = %s AND kind = 'phone' AND value = %s"
)
CUSTOMER = (
    "SELECT c.*, (SELECT json_agg(json_build_object('kind', i.kind, 'value', i.value)) "
    "FROM cxcore_identifier i WHERE i.customer_id = c.id) AS identifiers "
    "FROM cxcore_customer c WHERE c.id = %s"
)
PROMPTS = """
    SELECT rc.id, rc.severity, rc.opened_at, rc.touchpoints,
        (SELECT json_agg(json_build_object('id', a.id, 'text', a.text) ORDER BY a.position)
         FROM recovery_caseaction a WHERE a.case_id = rc.id) AS actions,
        (SELECT json_build_object('summary', e.summary, 'occurred_at', e.occurred_at,
                                  'location', l.name)
         FROM recovery_casetrigger t JOIN cxcore_episode e ON e.id = t.episode_id
         LEFT JOIN accounts_location l ON l.id = e.location_id
         WHERE t.case_id = rc.id ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1) AS trigger
    FROM recovery_recoverycase rc
    WHERE rc.customer_id = %s AND rc.status = 'open' AND rc.show_at_visit
    ORDER BY rc.severity DESC, rc.opened_at, rc.id
"""
LAST_EPISODES = (
    "SELECT e.id, e.kind, e.occurred_at, e.summary, e.touchpoints, e.items, e.experience, "
    "l.name FROM cxcore_episode e LEFT JOIN accounts_location l ON l.id = e.location_id "
    "WHERE e.customer_id = %s ORDER BY e.occurred_at DESC, e.id DESC LIMIT 20"
)
QUEUE_FIRST = """
    SELECT rc.id, rc.kind, rc.severity, rc.opened_at, rc.ack_due_at, rc.due_at, rc.touchpoints,
        c.id, c.name, l.slug, u.email
    FROM recovery_recoverycase rc JOIN cxcore_customer c ON c.id = rc.customer_id
    LEFT JOIN accounts_location l ON l.id = rc.location_id
    LEFT JOIN accounts_user u ON u.id = rc.assignee_id
    WHERE rc.organization_id = %(org)s AND rc.status = 'open' {after}
    ORDER BY rc.severity DESC, rc.opened_at, rc.id LIMIT 50
"""
QUEUE_AFTER = (
    "AND (rc.severity < %(s)s OR (rc.severity = %(s)s AND (rc.opened_at, rc.id) > (%(o)s, %(i)s)))"
)
INSIGHTS_BY_TOUCHPOINT = """
    SELECT t->>'code', count(*) FROM cxcore_episode e, jsonb_array_elements(e.touchpoints) t
    WHERE e.organization_id = %s AND e.occurred_at >= %s AND e.occurred_at < %s
      AND e.experience < 0 {location}
    GROUP BY 1
"""
WRITE_EPISODE = """
    INSERT INTO cxcore_episode (organization_id, customer_id, location_id, kind, occurred_at,
        recorded_at, source, external_id, summary, touchpoints, items, experience_source,
        rating_scale)
    VALUES (%s, %s, %s, 'visit', %s, now(), 'pos', '', '', '[]',
            '[{"name": "Flat white", "price": "3.40"}]', '', '')
    RETURNING id
"""
WRITE_CUSTOMER = """
    UPDATE cxcore_customer SET episode_count = episode_count + 1, visit_count = visit_count + 1,
        last_visit_at = greatest(last_visit_at, %s), total_spend = total_spend + 3.40,
        updated_at = now()
    WHERE id = %s
"""


def sidebar(organization_id: int, phone: str) -> tuple:
    """Identify by phone, the card, the open prompts, the last 20 episodes: 4 round trips."""
    with connection.cursor() as cur:
        cur.execute(IDENTIFY, [organization_id, phone])
        row = cur.fetchone()
        if row is None:
            return (None, [], [])
        cur.execute(CUSTOMER, [row[0]])
        customer = cur.fetchone()
        cur.execute(PROMPTS, [row[0]])
        prompts = cur.fetchall()
        cur.execute(LAST_EPISODES, [row[0]])
        return (customer, prompts, cur.fetchall())


def queue_page(organization_id: int, after: tuple | None) -> list:
    with connection.cursor() as cur:
        if after is None:
            cur.execute(QUEUE_FIRST.format(after=""), {"org": organization_id})
        else:
            severity, opened_at, case_id = after
            cur.execute(
                QUEUE_FIRST.format(after=QUEUE_AFTER),
                {"org": organization_id, "s": severity, "o": opened_at, "i": case_id},
            )
        return cur.fetchall()


def insights(organization_id: int, start: datetime, end: datetime, location_id: int | None):
    with connection.cursor() as cur:
        if location_id is None:
            cur.execute(INSIGHTS_BY_TOUCHPOINT.format(location=""), [organization_id, start, end])
        else:
            cur.execute(
                INSIGHTS_BY_TOUCHPOINT.format(location="AND e.location_id = %s"),
                [organization_id, start, end, location_id],
            )
        return cur.fetchall()


def write_episode(organization_id: int, customer_id: int, location_id: int, at: datetime) -> int:
    """One episode and its customer's state in one transaction."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(WRITE_EPISODE, [organization_id, customer_id, location_id, at])
        episode_id = cur.fetchone()[0]
        cur.execute(WRITE_CUSTOMER, [at, customer_id])
    return episode_id

"""What the case history tells other systems: each CaseEvent type's webhook, and its payload.

The payload is what a POS needs to show a badge: the case and customer ids, the kind, status
and severity, the location's slug and the headline the till shows. No contact details, no
free text typed by staff (a dismissal reason can name anyone).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from accounts.models import Location
from cxcore.models import Customer
from recovery.headlines import headline_of
from recovery.models import CaseEvent, CaseEventType, CaseKind, RecoveryCase
from recovery.selectors import newest_triggers
from webhooks import outbox
from webhooks.vocabulary import EventType

# The case history's types that other systems hear about; the rest (assigned, not now, a
# deviation folded in, a reopening) stay in the history.
WEBHOOK_TYPES: dict[str, str] = {
    CaseEventType.ACKNOWLEDGED: EventType.CASE_ACKNOWLEDGED,
    CaseEventType.ESCALATED: EventType.CASE_ESCALATED,
    CaseEventType.RESOLVED: EventType.CASE_RESOLVED,
    CaseEventType.DISMISSED: EventType.CASE_DISMISSED,
    CaseEventType.OUTCOME: EventType.CASE_OUTCOME_MEASURED,
    CaseEventType.SHOWN: EventType.PROMPT_SHOWN,
    CaseEventType.REMINDER: EventType.CASE_REMINDER,
}


def webhook_type(event: CaseEvent, case: RecoveryCase) -> str | None:
    if case.held_out:
        return None  # a held-out care case (issue 16) is never a prompt anywhere
    if event.type == CaseEventType.OPENED:
        return EventType.CARE_OPENED if case.kind == CaseKind.CARE else EventType.CASE_OPENED
    return WEBHOOK_TYPES.get(event.type)


def emit_case_events(events: Sequence[CaseEvent], *, now: datetime) -> None:
    """Write the webhooks of saved case events into the outbox (same transaction).

    A fixed handful of queries for the whole batch (customers, newest triggers, locations,
    then the outbox's own)."""
    wanted = [
        (event, event.case, kind)
        for event in events
        if (kind := webhook_type(event, event.case)) is not None
    ]
    if not wanted:
        return
    cases = {case.pk: case for _, case, _ in wanted}
    customers = {
        c.pk: c
        for c in Customer.objects.filter(pk__in={c.customer_id for c in cases.values()}).only(
            "id", "name", "visit_count", "first_visit_at", "last_visit_at"
        )
    }
    newest = newest_triggers(cases)
    location_ids = {c.location_id for c in cases.values()} | {e.location_id for e, _, _ in wanted}
    slugs = dict(
        Location.objects.filter(pk__in=[i for i in location_ids if i is not None]).values_list(
            "id", "slug"
        )
    )
    items = []
    for event, case, kind in wanted:
        customer = customers.get(case.customer_id)
        if customer is None:
            continue  # deleted in this transaction: nothing to show a badge for
        data: dict[str, Any] = {
            "case": {
                "id": case.pk,
                "kind": case.kind,
                "status": case.status,
                "severity": case.get_severity_display().lower(),
                "location": slugs.get(case.location_id) if case.location_id else None,
                "headline": headline_of(
                    case=case, customer=customer, trigger=newest.get(case.pk), now=now
                ),
            },
            "customer": {"id": case.customer_id},
        }
        if event.type == CaseEventType.SHOWN:
            data["shown_at"] = slugs.get(event.location_id) if event.location_id else None
        if event.type == CaseEventType.OUTCOME:
            data["case"]["outcome"] = case.outcome
        items.append(
            outbox.Outgoing(
                case.organization_id, kind, event.at, data, customer_id=case.customer_id
            )
        )
    outbox.emit_many(items)

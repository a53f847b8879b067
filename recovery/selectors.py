"""Reads of cases: scoped to the tenant, shaped for the queue and the case page."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet

from accounts.tenancy import Tenant
from cxcore.keyset import Position, keyset_page
from cxcore.models import Episode
from recovery.models import CaseEvent, RecoveryCase

QUEUE_ORDER = ("-severity", "opened_at", "id")
QUEUE_POSITION = (int, datetime, int)  # the types of QUEUE_ORDER's keys, to read cursors
# What a queue row shows: loading only these keeps a page's cost in the query, not in
# building thousands of unused attributes.
QUEUE_FIELDS = (
    "id", "organization_id", "kind", "status", "severity", "touchpoints", "worst_experience",
    "show_at_visit", "opened_at", "ack_due_at", "due_at", "acknowledged_at", "escalated_at",
    "resolved_at", "dismissed_at", "outcome", "last_shown_at", "last_acted_at",
    "customer__id", "customer__name",
    "location__id", "location__slug", "location__name",
    "assignee__id", "assignee__email",
    "playbook__id", "playbook__name",
)  # fmt: skip


def cases_for(tenant: Tenant) -> QuerySet[RecoveryCase]:
    """The cases this tenant may see: its organization's, and where it is limited to locations,
    those at its locations (and those tied to no location)."""
    qs = RecoveryCase.objects.for_tenant(tenant)
    if tenant.location_ids is not None:
        qs = qs.filter(Q(location_id__in=tenant.location_ids) | Q(location__isnull=True))
    return qs


def queue_rows(qs: QuerySet[RecoveryCase]) -> QuerySet[RecoveryCase]:
    """Cases with what a queue row shows (a CSV row shows the same)."""
    return qs.select_related("customer", "location", "assignee", "playbook").only(*QUEUE_FIELDS)


def case_queue(
    qs: QuerySet[RecoveryCase], *, after: Position | None, limit: int
) -> tuple[list[RecoveryCase], Position | None]:
    """A page of the queue and where the next one starts (None at the end): most severe, then
    oldest, first; a true keyset on (severity, opened_at, id) served by the case_queue index,
    so a deep page costs what the first one does."""
    return keyset_page(queue_rows(qs), order=QUEUE_ORDER, after=after, limit=limit)


SINCE_OPENED_LIMIT = 20


def case_detail(qs: QuerySet[RecoveryCase], case_id: int) -> RecoveryCase | None:
    """A case with what the case page shows, including what happened since it opened (a later
    good visit does not close a case, but it is shown on it)."""
    case = (
        qs.select_related("customer", "location", "assignee", "playbook", "resolution_episode")
        .prefetch_related(
            "actions",
            Prefetch(
                "triggers",
                queryset=Episode.objects.select_related("location").order_by("occurred_at", "id"),
            ),
            Prefetch(
                "events",
                queryset=CaseEvent.objects.select_related(
                    "actor_user", "actor_api_key", "location"
                ),
            ),
        )
        .filter(pk=case_id)
        .first()
    )
    if case is not None:
        case.since_opened = list(
            Episode.objects.filter(customer_id=case.customer_id, occurred_at__gt=case.opened_at)
            .select_related("location")
            .order_by("-occurred_at", "-id")[:SINCE_OPENED_LIMIT]
        )
    return case

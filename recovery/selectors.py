"""Reads of cases: scoped to the tenant, shaped for the queue and the case page."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypedDict, cast

from django.db.models import Prefetch, Q, QuerySet

from accounts.models import User
from accounts.tenancy import Tenant
from cxcore.keyset import Position, keyset_page
from cxcore.models import Episode, Identifier
from cxcore.vocabulary import IdentifierKind
from recovery.headlines import headline_of
from recovery.models import (
    CaseEvent,
    CaseEventType,
    CaseTrigger,
    RecoveryCase,
    RecoveryCaseQuerySet,
)

QUEUE_ORDER = ("-severity", "opened_at", "id")
QUEUE_POSITION = (int, datetime, int)  # the types of QUEUE_ORDER's keys, to read cursors
# What a queue row shows: loading only these keeps a page's cost in the query, not in
# building thousands of unused attributes.
QUEUE_FIELDS = (
    "id", "organization_id", "kind", "status", "severity", "touchpoints", "worst_experience",
    "show_at_visit", "opened_at", "ack_due_at", "due_at", "acknowledged_at", "escalated_at",
    "resolved_at", "dismissed_at", "outcome", "last_shown_at", "last_acted_at",
    "customer__id", "customer__name",
    # The care headline's rhythm (cxcore.rules.usual_gap) reads these three.
    "customer__visit_count", "customer__first_visit_at", "customer__last_visit_at",
    "location__id", "location__slug", "location__name",
    "assignee__id", "assignee__email", "assignee__name",
    "playbook__id", "playbook__name",
    # Issue 16: a care case's one line, and whether it is held out (never on the queue).
    "why_now", "care_reason", "held_out",
)  # fmt: skip


def cases_for(tenant: Tenant) -> RecoveryCaseQuerySet:
    """The cases this tenant may see: its organization's, and where it is limited to locations,
    those at its locations (and those tied to no location)."""
    return cases_at_locations(RecoveryCase.objects.for_tenant(tenant), tenant)


def cases_at_locations(cases: RecoveryCaseQuerySet, tenant: Tenant) -> RecoveryCaseQuerySet:
    """`cases` (already the tenant's organization's) narrowed to the tenant's locations."""
    if tenant.location_ids is not None:
        cases = cases.filter(Q(location_id__in=tenant.location_ids) | Q(location__isnull=True))
    return cases


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


def case_headline(case: RecoveryCase, trigger: Episode | None, *, now: datetime) -> str:
    """The case's one line, as the till shows it (recovery.headlines.headline_of)."""
    return headline_of(case=case, customer=case.customer, trigger=trigger, now=now)


# What a headline reads of a trigger.
TRIGGER_FIELDS = (
    "episode__kind",
    "episode__summary",
    "episode__touchpoints",
    "episode__occurred_at",
)


@dataclass(frozen=True)
class CaseLine:
    """A case with its headline: a row of the queue."""

    case: RecoveryCase
    headline: str


def newest_triggers(case_ids: Iterable[int]) -> dict[int, Episode]:
    """Each case's newest trigger (what its headline reads), in one query however many cases
    and triggers; a case without a trigger is absent."""
    ids = set(case_ids)
    if not ids:
        return {}
    newest: dict[int, Episode] = {}
    for link in (
        CaseTrigger.objects.filter(case_id__in=ids)
        .select_related("episode")
        .only("case", *TRIGGER_FIELDS)
        .order_by("case_id", "-episode__occurred_at", "-episode_id")
    ):
        newest.setdefault(link.case_id, link.episode)
    return newest


def case_lines(cases: list[RecoveryCase], *, now: datetime) -> list[CaseLine]:
    """The cases of a page with their headlines, reading the page's triggers in one query
    (however many cases and triggers), so the page's query count stays constant."""
    newest = newest_triggers(case.pk for case in cases)
    return [CaseLine(case, case_headline(case, newest.get(case.pk), now=now)) for case in cases]


SINCE_OPENED_LIMIT = 20


class SinceOpened(TypedDict):
    """What `case_detail` sets on a case beyond its fields: the customer's episodes since the
    case opened, newest first (the API's `since_opened`)."""

    since_opened: list[Episode]


if TYPE_CHECKING:  # django-stubs-ext is a dev dependency: the alias is for mypy only
    from django_stubs_ext import WithAnnotations

    DetailedCase = WithAnnotations[RecoveryCase, SinceOpened]


def case_detail(qs: QuerySet[RecoveryCase], case_id: int) -> DetailedCase | None:
    """A case with what the case page shows, including what happened since it opened (a later
    good visit does not close a case, but it is shown on it)."""
    case = (
        qs.select_related(
            "customer", "location", "assignee", "playbook", "resolution_episode", "variant"
        )
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
    if case is None:
        return None
    detailed = cast("DetailedCase", case)
    detailed.since_opened = list(
        Episode.objects.filter(customer_id=case.customer_id, occurred_at__gt=case.opened_at)
        .select_related("location")
        .order_by("-occurred_at", "-id")[:SINCE_OPENED_LIMIT]
    )
    return detailed


OTHER_CASES_LIMIT = 20


@dataclass(frozen=True)
class HistoryLine:
    """An event of the case history; `assignee` says to whom an assignment went."""

    event: CaseEvent
    assignee: str = ""


@dataclass(frozen=True)
class CasePage:
    """What the case page shows beyond the case itself (`case_detail`)."""

    case: RecoveryCase
    headline: str
    history: list[HistoryLine]
    contacts: list[Identifier]  # phones and emails, for tap-to-call and email links
    other_cases: list[RecoveryCase]  # the customer's other cases, newest first, with outcomes


def case_page(qs: QuerySet[RecoveryCase], case_id: int, *, now: datetime) -> CasePage | None:
    """The case page of one of `qs`'s cases: the case, its headline, its history naming
    people, the customer's phone and email, and their other cases in `qs`."""
    case = case_detail(qs, case_id)
    if case is None:
        return None
    triggers = list(case.triggers.all())  # oldest first: the headline reads the newest
    contacts = list(
        Identifier.objects.filter(
            customer_id=case.customer_id, kind__in=(IdentifierKind.PHONE, IdentifierKind.EMAIL)
        ).order_by("kind", "value")
    )
    other_cases = list(
        qs.filter(customer_id=case.customer_id)
        .exclude(pk=case.pk)
        .select_related("location")
        .order_by("-opened_at", "-id")[:OTHER_CASES_LIMIT]
    )
    return CasePage(
        case=case,
        headline=case_headline(case, triggers[-1] if triggers else None, now=now),
        history=history_lines(list(case.events.all())),
        contacts=contacts,
        other_cases=other_cases,
    )


def history_lines(events: list[CaseEvent]) -> list[HistoryLine]:
    """Name whom each assignment went to, in one query for all of them. An assignment event
    holds `assignee` as an email (and may hold `assignee_id`); a person who has left is shown
    by what the event holds, so old events stay readable."""
    assigned = [e for e in events if e.type == CaseEventType.ASSIGNED]
    ids = {e.data.get("assignee_id") for e in assigned} - {None}
    emails = {e.data.get("assignee") for e in assigned} - {None}
    people: dict[int | str, str] = {}
    if ids or emails:
        for user in User.objects.filter(Q(pk__in=ids) | Q(email__in=emails)):
            people[user.pk] = people[user.email] = user.display_name
    lines = []
    for event in events:
        label = ""
        if event.type == CaseEventType.ASSIGNED:
            held = event.data.get("assignee_id") or event.data.get("assignee")
            label = people.get(held, str(held)) if held else "nobody"
        lines.append(HistoryLine(event, label))
    return lines

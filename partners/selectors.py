"""Reads of partners and their incidents, scoped to the tenant, and the monthly scorecard.

The scorecard, per partner and calendar month (in the organization's time zone):

- **involved visits**: the organization's visits and orders in the month whose touchpoints
  name one the partner runs (an episode's `touchpoints`, third-party flag or not: the partner
  record says who runs the touchpoint). A POS or till that does not tag visits with the
  touchpoint (a valet ticket, a delivery order) leaves this at zero, and the rate blank.
- **failures**: the partner's incidents whose negative episode happened in the month;
  **failures per 100 visits** is failures / involved visits × 100.
- **time to answer**: the median of answered_at − opened_at over those incidents the partner
  has answered (an answer, a fix or a dispute, whichever came first), and how many it rests on.
- **return rate**: of the customers affected in the month (each counted once per partner, from
  their first incident of the month), the share who came back — a visit or an order — within
  the organization's outcome window after the failure. Only customers whose window has ended
  count, so a month's rate settles once its last window closes; those still inside it are
  counted apart.

A member or key limited to locations sees the incidents and visits of those locations (and
incidents tied to no location), as with cases.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from statistics import median
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, Q, QuerySet

from accounts.tenancy import Tenant
from cxcore.keyset import Position, keyset_page
from cxcore.models import Episode
from cxcore.vocabulary import VISIT_KINDS
from partners.models import Partner, PartnerIncident, PartnerIncidentQuerySet, PartnerQuerySet
from recovery.insights import Rate

INCIDENT_ORDER = ("-opened_at", "-id")
INCIDENT_POSITION = (datetime, int)  # the types of INCIDENT_ORDER's keys, to read cursors


def partners_for(tenant: Tenant) -> PartnerQuerySet:
    """The organization's partners (a location limit narrows incidents, not who the partners
    are)."""
    return Partner.objects.for_tenant(tenant)


def incidents_for(tenant: Tenant) -> PartnerIncidentQuerySet:
    """The incidents this tenant may see: its organization's, and where it is limited to
    locations, those at its locations (and those tied to no location)."""
    return incidents_at_locations(PartnerIncident.objects.for_tenant(tenant), tenant)


def incidents_at_locations(
    incidents: PartnerIncidentQuerySet, tenant: Tenant
) -> PartnerIncidentQuerySet:
    """`incidents` (already the tenant's organization's) narrowed to the tenant's locations."""
    if tenant.location_ids is not None:
        incidents = incidents.filter(
            Q(location_id__in=tenant.location_ids) | Q(location__isnull=True)
        )
    return incidents


def partner_list(tenant: Tenant) -> list[tuple[Partner, int]]:
    """The partners, active first, each with how many of its incidents the tenant may see are
    still open or answered: two queries."""
    unclosed = dict(
        incidents_for(tenant)
        .unclosed()
        .values("partner_id")
        .annotate(n=Count("id"))
        .values_list("partner_id", "n")
        .order_by()
    )
    partners = partners_for(tenant).order_by("-is_active", "name", "id")
    return [(partner, unclosed.get(partner.pk, 0)) for partner in partners]


def incident_rows(qs: QuerySet[PartnerIncident]) -> QuerySet[PartnerIncident]:
    """Incidents with what a row shows: who, where, what happened and the partner's answer."""
    return qs.select_related("customer", "location", "episode", "partner").only(
        "id", "organization_id", "status", "occurred_at", "opened_at", "answered_at",
        "answer", "closed_at", "touchpoints", "experience", "recovery_case_id",
        "customer__id", "customer__name", "location__id", "location__slug", "location__name",
        "location__time_zone", "episode__id", "episode__kind", "episode__summary",
        "partner__id", "partner__name",
    )  # fmt: skip


def incident_page(
    qs: QuerySet[PartnerIncident], *, after: Position | None, limit: int
) -> tuple[list[PartnerIncident], Position | None]:
    """A page of incidents, newest first, and where the next one starts (None at the end):
    a keyset on (opened_at, id), served by partner_incident_recent for one partner."""
    return keyset_page(incident_rows(qs), order=INCIDENT_ORDER, after=after, limit=limit)


# --- the monthly scorecard -------------------------------------------------------------------


@dataclass
class ScorecardRow:
    partner: Partner
    involved_visits: int = 0
    failures: int = 0
    answered: int = 0
    median_hours_to_answer: float | None = None
    affected_customers: int = 0
    # Of the affected customers whose outcome window has ended: how many came back.
    returned: Rate = field(default_factory=lambda: Rate(0, 0))
    still_in_window: int = 0

    @property
    def failures_per_100(self) -> float | None:
        if not self.involved_visits:
            return None
        return round(100 * self.failures / self.involved_visits, 1)


@dataclass
class Scorecard:
    month: date  # its first day
    start: datetime
    end: datetime  # exclusive: the first moment of the next month
    outcome_window_days: int
    rows: list[ScorecardRow]

    @property
    def label(self) -> str:
        return f"{self.month:%B %Y}"

    @property
    def previous_month(self) -> date:
        return (self.month - timedelta(days=1)).replace(day=1)

    @property
    def next_month(self) -> date:
        return (self.month + timedelta(days=32)).replace(day=1)


def month_bounds(month: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The month's first moment and the next month's, in `tz`."""
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return datetime.combine(first, time.min, tz), datetime.combine(following, time.min, tz)


def last_full_month(today: date) -> date:
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def scorecard(*, tenant: Tenant, month: date, now: datetime) -> Scorecard:
    """Every partner's figures for `month` (see the module's docstring for what each means):
    four queries, whatever the number of partners."""
    organization = tenant.organization
    start, end = month_bounds(month, ZoneInfo(organization.time_zone))
    window = organization.recovery_outcome_window
    partners = list(partners_for(tenant).order_by("name", "id"))
    rows = {p.pk: ScorecardRow(partner=p) for p in partners}

    incidents = list(
        incidents_for(tenant)
        .filter(occurred_at__gte=start, occurred_at__lt=end)
        .order_by("occurred_at", "id")
        .values_list("partner_id", "customer_id", "occurred_at", "opened_at", "answered_at")
    )
    hours: dict[int, list[float]] = defaultdict(list)
    first_failure: dict[tuple[int, int], datetime] = {}
    for partner_id, customer_id, occurred_at, opened_at, answered_at in incidents:
        row = rows[partner_id]
        row.failures += 1
        if answered_at is not None:
            row.answered += 1
            hours[partner_id].append(max((answered_at - opened_at).total_seconds(), 0) / 3600)
        first_failure.setdefault((partner_id, customer_id), occurred_at)
    for partner_id, values in hours.items():
        rows[partner_id].median_hours_to_answer = round(median(values), 1)

    for partner_id, visits in _involved_visits(tenant, partners, start, end).items():
        rows[partner_id].involved_visits = visits
    _returns(tenant, rows, first_failure, window, now)

    kept = [
        row for row in rows.values() if row.partner.is_active or row.failures or row.involved_visits
    ]
    return Scorecard(
        month=month.replace(day=1),
        start=start,
        end=end,
        outcome_window_days=window.days,
        rows=kept,
    )


def _involved_visits(
    tenant: Tenant, partners: list[Partner], start: datetime, end: datetime
) -> dict[int, int]:
    """Visits and orders of the month naming a touchpoint each partner runs: one aggregate
    over the month's visits (the episode_org_occurred index bounds it to the month)."""
    runs = {p.pk: list(p.touchpoints or []) for p in partners if p.touchpoints}
    if not runs:
        return {}
    visits = Episode.objects.for_tenant(tenant).filter(
        occurred_at__gte=start, occurred_at__lt=end, kind__in=VISIT_KINDS
    )
    if tenant.location_ids is not None:
        visits = visits.filter(location_id__in=tenant.location_ids)
    if connection.vendor == "postgresql":
        # jsonb containment: [{"code": "parking_valet"}] is in any list holding that code.
        aggregates = {
            f"p{pk}": Count(
                "id",
                filter=_any_of([Q(touchpoints__contains=[{"code": code}]) for code in codes]),
            )
            for pk, codes in runs.items()
        }
        counts = visits.aggregate(**aggregates)
        return {pk: counts[f"p{pk}"] for pk in runs}
    # The embedded SQLite of `make run` has no JSON containment: a small data set, in Python.
    found: dict[int, int] = defaultdict(int)
    for touchpoints in visits.exclude(touchpoints=[]).values_list("touchpoints", flat=True):
        named = {t.get("code") for t in touchpoints or [] if isinstance(t, dict)}
        for pk, codes in runs.items():
            if named & set(codes):
                found[pk] += 1
    return {pk: found[pk] for pk in runs}


def _any_of(conditions: list[Q]) -> Q:
    combined = Q()
    for condition in conditions:
        combined |= condition
    return combined


def _returns(
    tenant: Tenant,
    rows: dict[int, ScorecardRow],
    first_failure: dict[tuple[int, int], datetime],
    window: timedelta,
    now: datetime,
) -> None:
    """Who of the affected customers came back within the window after their failure: one
    read of their visits from the month's first failure to its last window's end."""
    if not first_failure:
        return
    customers = {customer_id for _, customer_id in first_failure}
    since = min(first_failure.values())
    until = max(first_failure.values()) + window
    visits: dict[int, list[datetime]] = defaultdict(list)
    for customer_id, occurred_at in (
        Episode.objects.for_tenant(tenant)
        .filter(
            customer_id__in=customers,
            kind__in=VISIT_KINDS,
            occurred_at__gt=since,
            occurred_at__lte=until,
        )
        .values_list("customer_id", "occurred_at")
    ):
        visits[customer_id].append(occurred_at)
    for (partner_id, customer_id), failed_at in first_failure.items():
        row = rows[partner_id]
        row.affected_customers += 1
        if failed_at + window > now:
            row.still_in_window += 1
            continue
        came_back = any(failed_at < t <= failed_at + window for t in visits[customer_id])
        row.returned = Rate(row.returned.numerator + came_back, row.returned.denominator + 1)

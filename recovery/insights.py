"""Insights: which parts of the journey create bad experiences, and whether recovery works.

Outcomes are measured by behaviour (did they come back, and how was it), and every figure
says how many cases it rests on. Reads for one organization and period, bounded by the
period and aggregated in the database: the negative experiences through a partial index on
(organization, occurred_at) where the experience is negative, the cases through their own
indexes. No roll-up: one organization's month reads in milliseconds (see the benchmark), and
a roll-up would be a second truth to keep in step with corrections and late episodes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from statistics import median
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Q
from django.db.models.functions import TruncWeek

from accounts.models import Location
from accounts.tenancy import Tenant
from cxcore.models import Episode
from recovery.models import CaseKind, CaseStatus, Outcome
from recovery.selectors import cases_for


@dataclass
class Rate:
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return round(self.numerator / self.denominator, 3) if self.denominator else None


@dataclass
class Summary:
    start: date
    end: date
    location: str | None
    negative_experiences: int = 0
    cases_opened: int = 0
    acknowledged_in_sla: Rate = field(default_factory=lambda: Rate(0, 0))
    resolved_in_sla: Rate = field(default_factory=lambda: Rate(0, 0))
    median_hours_to_acknowledge: float | None = None
    median_hours_to_resolve: float | None = None
    shown_not_acted_on: int = 0
    open_care_cases: int = 0
    recovery_rate: Rate = field(default_factory=lambda: Rate(0, 0))
    return_rate_followed_up: Rate = field(default_factory=lambda: Rate(0, 0))
    return_rate_not_followed_up: Rate = field(default_factory=lambda: Rate(0, 0))
    by_touchpoint: list[tuple[str, int]] = field(default_factory=list)
    third_party: list[tuple[str, int]] = field(default_factory=list)
    by_location: list[tuple[str, int]] = field(default_factory=list)
    heat: dict[str, dict[str, int]] = field(default_factory=dict)
    by_week: list[tuple[str, int]] = field(default_factory=list)

    @property
    def lift(self) -> float | None:
        a, b = self.return_rate_followed_up.value, self.return_rate_not_followed_up.value
        return None if a is None or b is None else round(a - b, 3)


def summary(*, tenant: Tenant, start: date, end: date, location: Location | None = None) -> Summary:
    tz = ZoneInfo(location.time_zone if location else tenant.organization.time_zone)
    since = datetime.combine(start, time.min, tz)
    until = datetime.combine(end + timedelta(days=1), time.min, tz)
    result = Summary(start=start, end=end, location=location.slug if location else None)

    episodes = Episode.objects.for_tenant(tenant).filter(
        occurred_at__gte=since, occurred_at__lt=until, experience__lt=0
    )
    cases = cases_for(tenant)
    if location is not None:
        episodes = episodes.filter(location=location)
        cases = cases.filter(location=location)
    elif tenant.location_ids is not None:
        episodes = episodes.filter(location_id__in=tenant.location_ids)

    names = dict(
        Location.objects.filter(organization=tenant.organization).values_list("pk", "name")
    )
    _negatives(result, episodes, names, tz)
    _case_timings(
        result, cases.filter(kind=CaseKind.RECOVERY, opened_at__gte=since, opened_at__lt=until)
    )

    result.shown_not_acted_on = cases.filter(
        status=CaseStatus.OPEN, last_shown_at__isnull=False, acknowledged_at__isnull=True
    ).count()
    result.open_care_cases = cases.filter(kind=CaseKind.CARE, status=CaseStatus.OPEN).count()

    measured = (
        cases.filter(kind=CaseKind.RECOVERY, opened_at__gte=since, opened_at__lt=until)
        .exclude(outcome="")
        .values("outcome_followed_up", "outcome")
        .annotate(n=Count("id"))
    )
    tally = {(row["outcome_followed_up"], row["outcome"]): row["n"] for row in measured}

    def came_back(followed: bool) -> Rate:
        total = sum(n for (f, _), n in tally.items() if f is followed)
        back = tally.get((followed, Outcome.RECOVERED), 0) + tally.get(
            (followed, Outcome.CAME_BACK_UNHAPPY), 0
        )
        return Rate(back, total)

    followed_total = sum(n for (f, _), n in tally.items() if f is True)
    result.recovery_rate = Rate(tally.get((True, Outcome.RECOVERED), 0), followed_total)
    result.return_rate_followed_up = came_back(True)
    result.return_rate_not_followed_up = came_back(False)
    return result


def _negatives(result: Summary, episodes, names: dict[int, str], tz: ZoneInfo) -> None:
    """Counts by touchpoint, partner, location and week, grouped in the database: a month of
    a large chain is tens of thousands of episodes but a few hundred distinct groups."""
    touchpoints: Counter[str] = Counter()
    partners: Counter[str] = Counter()
    places: Counter[str] = Counter()
    heat: dict[str, Counter[str]] = {}
    groups = episodes.values("touchpoints", "location_id").annotate(n=Count("id")).order_by()
    for row in groups:
        n, place = row["n"], names.get(row["location_id"], "unplaced")
        result.negative_experiences += n
        places[place] += n
        for point in row["touchpoints"] or []:
            code = point.get("code", "other")
            (partners if point.get("third_party") else touchpoints)[code] += n
            heat.setdefault(code, Counter())[place] += n
    weeks: Counter[str] = Counter()
    by_week = (
        episodes.annotate(week=TruncWeek("occurred_at", tzinfo=tz))
        .values("week")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in by_week:
        year, week, _ = row["week"].astimezone(tz).isocalendar()
        weeks[f"{year}-W{week:02d}"] += row["n"]
    result.by_touchpoint = touchpoints.most_common()
    result.third_party = partners.most_common()
    result.by_location = places.most_common()
    result.heat = {code: dict(counter) for code, counter in heat.items()}
    result.by_week = sorted(weeks.items())


class MedianHours(Aggregate):
    """The median of a duration in hours (PostgreSQL's ordered-set aggregate)."""

    template = "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM %(expressions)s))"
    output_field = FloatField()


def _case_timings(result: Summary, opened) -> None:
    """Cases opened in the period: how many, the shares handled within SLA, the medians."""
    acked = Q(acknowledged_at__isnull=False)
    resolved = Q(resolved_at__isnull=False)
    figures = opened.aggregate(
        n=Count("id"),
        acked_in_sla=Count("id", filter=acked & Q(acknowledged_at__lte=F("ack_due_at"))),
        resolved_in_sla=Count("id", filter=resolved & Q(resolved_at__lte=F("due_at"))),
    )
    result.cases_opened = figures["n"]
    result.acknowledged_in_sla = Rate(figures["acked_in_sla"], figures["n"])
    result.resolved_in_sla = Rate(figures["resolved_in_sla"], figures["n"])
    if connection.vendor == "postgresql":
        medians = opened.aggregate(
            ack=MedianHours(F("acknowledged_at") - F("opened_at"), filter=acked),
            resolve=MedianHours(F("resolved_at") - F("opened_at"), filter=resolved),
        )
        ack_hours = None if medians["ack"] is None else medians["ack"] / 3600
        resolve_hours = None if medians["resolve"] is None else medians["resolve"] / 3600
    else:  # the embedded SQLite of `make run`: a small data set, medians in Python
        rows = list(opened.values_list("opened_at", "acknowledged_at", "resolved_at"))
        ack = [(a - o).total_seconds() for o, a, _ in rows if a is not None]
        res = [(r - o).total_seconds() for o, _, r in rows if r is not None]
        ack_hours = median(ack) / 3600 if ack else None
        resolve_hours = median(res) / 3600 if res else None
    result.median_hours_to_acknowledge = None if ack_hours is None else round(ack_hours, 1)
    result.median_hours_to_resolve = None if resolve_hours is None else round(resolve_hours, 1)

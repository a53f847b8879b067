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


@dataclass(frozen=True)
class Week:
    """One week of the period (Monday to Sunday, local time), empty weeks included."""

    start: date  # its Monday
    negative_experiences: int = 0
    cases_opened: int = 0

    @property
    def label(self) -> str:
        """'w/c 9 Nov': the week commencing Monday 9 November."""
        return f"w/c {self.start.day} {self.start:%b}"

    @property
    def iso(self) -> str:
        year, week, _ = self.start.isocalendar()
        return f"{year}-W{week:02d}"


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
    # Every week of the period, oldest first: negative experiences and recovery cases opened.
    weeks: list[Week] = field(default_factory=list)

    @property
    def by_week(self) -> list[tuple[str, int]]:
        """Negative experiences by ISO week ('2026-W46'), the weeks that had any."""
        return [(w.iso, w.negative_experiences) for w in self.weeks if w.negative_experiences]

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
    negatives_by_week = _negatives(result, episodes, names, tz)
    opened = cases.filter(kind=CaseKind.RECOVERY, opened_at__gte=since, opened_at__lt=until)
    _case_timings(result, opened)
    result.weeks = _weeks(start, end, negatives_by_week, _opened_by_week(opened, tz))

    open_now = (
        cases.filter(status=CaseStatus.OPEN)
        .worked()
        .aggregate(care=Count("id", filter=Q(kind=CaseKind.CARE)))
    )
    result.shown_not_acted_on = cases.shown_not_acted_on().count()
    result.open_care_cases = open_now["care"]
    return result


def _negatives(result: Summary, episodes, names: dict[int, str], tz: ZoneInfo) -> Counter[date]:
    """Counts by touchpoint, partner, location and week (returned, by Monday) in one grouped
    read: a month of a large chain is tens of thousands of episodes but at most a few
    thousand groups."""
    touchpoints: Counter[str] = Counter()
    partners: Counter[str] = Counter()
    places: Counter[str] = Counter()
    heat: dict[str, Counter[str]] = {}
    weeks: Counter[date] = Counter()
    groups = (
        episodes.annotate(week=TruncWeek("occurred_at", tzinfo=tz))
        .values("touchpoints", "location_id", "week")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in groups:
        n, place = row["n"], names.get(row["location_id"], "unplaced")
        result.negative_experiences += n
        places[place] += n
        weeks[row["week"].astimezone(tz).date()] += n
        for point in row["touchpoints"] or []:
            code = point.get("code", "other")
            (partners if point.get("third_party") else touchpoints)[code] += n
            heat.setdefault(code, Counter())[place] += n
    result.by_touchpoint = touchpoints.most_common()
    result.third_party = partners.most_common()
    result.by_location = places.most_common()
    result.heat = {code: dict(counter) for code, counter in heat.items()}
    return weeks


def _opened_by_week(opened, tz: ZoneInfo) -> Counter[date]:
    """Recovery cases opened in the period, by the Monday of their week (one grouped read)."""
    rows = (
        opened.annotate(week=TruncWeek("opened_at", tzinfo=tz))
        .values("week")
        .annotate(n=Count("id"))
        .order_by()
    )
    weeks: Counter[date] = Counter()
    for row in rows:
        weeks[row["week"].astimezone(tz).date()] += row["n"]
    return weeks


def _weeks(start: date, end: date, negatives: Counter[date], opened: Counter[date]) -> list[Week]:
    """Every week from the one holding `start` to the one holding `end`, zeros included."""
    monday = start - timedelta(days=start.weekday())
    weeks = []
    while monday <= end:
        weeks.append(Week(monday, negatives[monday], opened[monday]))
        monday += timedelta(weeks=1)
    return weeks


class MedianHours(Aggregate):
    """The median of a duration in hours (PostgreSQL's ordered-set aggregate)."""

    template = "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM %(expressions)s))"
    output_field = FloatField()


def _case_timings(result: Summary, opened) -> None:
    """Cases opened in the period, in one pass: how many, the shares handled within SLA, the
    medians, and the outcomes of those measured (recovered, came back unhappy, or not)."""
    acked = Q(acknowledged_at__isnull=False)
    resolved = Q(resolved_at__isnull=False)
    back = Q(outcome__in=(Outcome.RECOVERED, Outcome.CAME_BACK_UNHAPPY))
    aggregates: dict[str, Aggregate] = {
        "n": Count("id"),
        "acked_in_sla": Count("id", filter=acked & Q(acknowledged_at__lte=F("ack_due_at"))),
        "resolved_in_sla": Count("id", filter=resolved & Q(resolved_at__lte=F("due_at"))),
    }
    for followed, name in ((True, "followed"), (False, "unfollowed")):
        cohort = Q(outcome_followed_up=followed) & ~Q(outcome="")
        aggregates[f"{name}_measured"] = Count("id", filter=cohort)
        aggregates[f"{name}_back"] = Count("id", filter=cohort & back)
        aggregates[f"{name}_recovered"] = Count("id", filter=cohort & Q(outcome=Outcome.RECOVERED))
    postgres = connection.vendor == "postgresql"
    if postgres:
        aggregates["ack"] = MedianHours(F("acknowledged_at") - F("opened_at"), filter=acked)
        aggregates["resolve"] = MedianHours(F("resolved_at") - F("opened_at"), filter=resolved)
    figures = opened.aggregate(**aggregates)
    result.cases_opened = figures["n"]
    result.acknowledged_in_sla = Rate(figures["acked_in_sla"], figures["n"])
    result.resolved_in_sla = Rate(figures["resolved_in_sla"], figures["n"])
    result.recovery_rate = Rate(figures["followed_recovered"], figures["followed_measured"])
    result.return_rate_followed_up = Rate(figures["followed_back"], figures["followed_measured"])
    result.return_rate_not_followed_up = Rate(
        figures["unfollowed_back"], figures["unfollowed_measured"]
    )
    if postgres:
        ack_hours = None if figures["ack"] is None else figures["ack"] / 3600
        resolve_hours = None if figures["resolve"] is None else figures["resolve"] / 3600
    else:  # the embedded SQLite of `make run`: a small data set, medians in Python
        rows = list(opened.values_list("opened_at", "acknowledged_at", "resolved_at"))
        ack = [(a - o).total_seconds() for o, a, _ in rows if a is not None]
        res = [(r - o).total_seconds() for o, _, r in rows if r is not None]
        ack_hours = median(ack) / 3600 if ack else None
        resolve_hours = median(res) / 3600 if res else None
    result.median_hours_to_acknowledge = None if ack_hours is None else round(ack_hours, 1)
    result.median_hours_to_resolve = None if resolve_hours is None else round(resolve_hours, 1)

"""Insights: which parts of the journey create bad experiences, and whether recovery works.

Outcomes are measured by behaviour (did they come back, and how was it), and every figure
says how many cases it rests on. Reads for one organization and period, bounded by the
period: the episode counts use the (organization, occurred_at) index.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from statistics import median
from zoneinfo import ZoneInfo

from django.db.models import Count

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

    touchpoints: Counter[str] = Counter()
    partners: Counter[str] = Counter()
    places: Counter[str] = Counter()
    weeks: Counter[str] = Counter()
    heat: dict[str, Counter[str]] = {}
    names = dict(
        Location.objects.filter(organization=tenant.organization).values_list("pk", "name")
    )
    for occurred_at, location_id, points in episodes.values_list(
        "occurred_at", "location_id", "touchpoints"
    ).iterator(chunk_size=5000):
        result.negative_experiences += 1
        place = names.get(location_id, "unplaced")
        places[place] += 1
        local = occurred_at.astimezone(tz)
        year, week, _ = local.isocalendar()
        weeks[f"{year}-W{week:02d}"] += 1
        for point in points or []:
            code = point.get("code", "other")
            (partners if point.get("third_party") else touchpoints)[code] += 1
            heat.setdefault(code, Counter())[place] += 1
    result.by_touchpoint = touchpoints.most_common()
    result.third_party = partners.most_common()
    result.by_location = places.most_common()
    result.heat = {code: dict(counter) for code, counter in heat.items()}
    result.by_week = sorted(weeks.items())

    opened = cases.filter(kind=CaseKind.RECOVERY, opened_at__gte=since, opened_at__lt=until)
    timings = list(
        opened.values_list("opened_at", "ack_due_at", "acknowledged_at", "due_at", "resolved_at")
    )
    result.cases_opened = len(timings)
    acked = [(o, a, at) for o, a, at, _, _ in timings if at is not None]
    resolved = [(o, d, r) for o, _, _, d, r in timings if r is not None]
    result.acknowledged_in_sla = Rate(sum(at <= a for _, a, at in acked), len(timings))
    result.resolved_in_sla = Rate(sum(r <= d for _, d, r in resolved), len(timings))
    if acked:
        result.median_hours_to_acknowledge = _hours(median(at - o for o, _, at in acked))
    if resolved:
        result.median_hours_to_resolve = _hours(median(r - o for o, _, r in resolved))

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


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 1)

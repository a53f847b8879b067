"""Why a care case opens now: the drift rule and the one line that explains a case. Pure.

- **Drift**: a regular whose last `window` experiences that carry one slide, first to last, by
  at least `drop` on the -2..+2 scale, never rising on the way and with no negative among them
  (+2, +1, 0 with window 3 and drop 2). A negative is a recovery case's business, not care's.
- **Why now**: one line of at most 120 characters, from the narrative alone, in this order:
  the rhythm ("Mon/Wed/Fri for 8 months", or "every ~9 days for 8 months"), the gap ("12 days
  absent, 4× their rhythm", or "last here 2 days ago" when they are not overdue), a drift
  ("drifting +2 → +1 → 0") or else the last experience, and an unresolved earlier case. When
  they do not fit, the last experience goes first, then the earlier case, then the drift; the
  rhythm and the gap always stay.

The weekday pattern reads the visits given (the caller passes the recent ones) in the
location's time zone: their weekdays (each with more than half the visits of the busiest),
when there are at most three and they hold at least 60% of the visits.
With fewer than five visits, or no such weekdays, the rhythm is the mean gap between visits
(cxcore.rules.usual_gap, the one rhythm the care sweep uses).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from cxcore.rules import NarrativeState, usual_gap
from cxcore.vocabulary import EXPERIENCE_LABELS
from recovery.headlines import ago

MAX_WHY_NOW = 120
ELLIPSIS = "…"
# A weekday pattern: at most this many weekdays holding at least this share of the visits,
# read from at least this many visits.
PATTERN_MAX_DAYS = 3
PATTERN_MIN_SHARE = 0.6
PATTERN_MIN_VISITS = 5
# Below this many times their rhythm, an absence is not news: say when they were last here.
OVERDUE_FACTOR = 1.5
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def drifting(experiences: Sequence[int], *, window: int, drop: int) -> bool:
    """The last `window` of `experiences` (oldest first, only those that carry one) slide by
    at least `drop` from first to last, never rising, with none below zero."""
    if window < 2 or len(experiences) < window:
        return False
    recent = list(experiences[-window:])
    if min(recent) < 0:
        return False
    if any(later > earlier for earlier, later in pairwise(recent)):
        return False
    return recent[0] - recent[-1] >= drop


@dataclass(frozen=True)
class EarlierCase:
    """An earlier case of the customer's never followed up: still open, or dismissed."""

    opened_at: datetime
    about: str = ""  # a few words: the first touchpoint's label ("Order accuracy")


def weekday_pattern(visits: Sequence[datetime], *, time_zone: str = "UTC") -> tuple[int, ...]:
    """The customer's weekdays (0 = Monday), in weekday order; () when there is no pattern or
    too few visits to tell.

    Their weekdays are those with more than half the visits of their most visited weekday: a
    pattern when there are at most three and they hold at least 60% of the visits. (The
    fewest weekdays reaching 60% would make a Mon/Wed/Fri regular "Mon/Wed".)
    """
    if len(visits) < PATTERN_MIN_VISITS:
        return ()
    tz = ZoneInfo(time_zone or "UTC")
    counts = Counter(visit.astimezone(tz).weekday() for visit in visits)
    top = max(counts.values())
    days = tuple(sorted(day for day, n in counts.items() if 2 * n > top))
    held = sum(counts[day] for day in days)
    if len(days) <= PATTERN_MAX_DAYS and held >= PATTERN_MIN_SHARE * len(visits):
        return days
    return ()


def span_words(span: timedelta) -> str:
    """'5 days', '3 weeks', '8 months', '2 years' (rounded down)."""
    days = max(span.days, 0)
    if days < 14:
        return f"{days} day" + ("" if days == 1 else "s")
    if days < 60:
        return f"{days // 7} weeks"
    if days < 730:
        return f"{days // 30} months"
    return f"{days // 365} years"


def rhythm_words(state: NarrativeState, visits: Sequence[datetime], *, time_zone: str) -> str:
    """'Mon/Wed/Fri for 8 months', 'Saturdays for 3 months', 'every ~9 days for 8 months'."""
    gap = usual_gap(state)
    if gap is None or state.first_visit_at is None or state.last_visit_at is None:
        return ""
    days = weekday_pattern(visits, time_zone=time_zone)
    if len(days) == 1:
        pattern = f"{WEEKDAY_NAMES[days[0]]}s"
    elif days:
        pattern = "/".join(WEEKDAYS[day] for day in days)
    else:
        every = max(round(gap / timedelta(days=1)), 1)
        pattern = {1: "daily", 7: "weekly"}.get(every, f"every ~{every} days")
    return f"{pattern} for {span_words(state.last_visit_at - state.first_visit_at)}"


def gap_words(state: NarrativeState, now: datetime) -> str:
    """'12 days absent, 4× their rhythm' when overdue, else 'last here 2 days ago'."""
    last = state.last_visit_at
    if last is None:
        return ""
    gap = usual_gap(state)
    absent = max(now - last, timedelta(0))
    factor = absent / gap if gap else 0.0
    if factor < OVERDUE_FACTOR or absent < timedelta(days=2):
        return f"last here {ago(last, now)}"
    times = f"{factor:.0f}" if factor >= 3 else f"{factor:.1f}".removesuffix(".0")
    return f"{absent.days} days absent, {times}× their rhythm"


def signed(experience: int) -> str:
    return f"+{experience}" if experience > 0 else str(experience)


def day_words(at: datetime, now: datetime, *, time_zone: str) -> str:
    """'3 Nov', with the year when it is not this year's."""
    tz = ZoneInfo(time_zone or "UTC")
    local = at.astimezone(tz)
    year = "" if local.year == now.astimezone(tz).year else f" {local.year}"
    return f"{local.day} {local:%b}{year}"


def why_now(
    *,
    state: NarrativeState,
    visits: Sequence[datetime],
    experiences: Sequence[int],
    now: datetime,
    time_zone: str = "UTC",
    drift_window: int = 3,
    drift_drop: int = 2,
    earlier_case: EarlierCase | None = None,
) -> str:
    """One line (≤ 120 characters) saying why this regular needs care now.

    `state`: the customer's narrative state (rhythm, last visit, last experience); `visits`:
    their recent visit times, any order (the weekday pattern); `experiences`: the experiences
    that carry one, oldest first (the drift, by the organization's window and drop);
    `earlier_case`: an earlier case still unresolved, if any.
    """
    rhythm, gap = rhythm_words(state, visits, time_zone=time_zone), gap_words(state, now)
    # The rhythm and the gap read as two clauses of one part: they always stay.
    first = "; ".join(part for part in (rhythm, gap) if part)
    # (priority, text) in reading order: the lowest priority goes first when it does not fit.
    parts: list[tuple[int, str]] = [(9, first)] if first else []
    if drifting(experiences, window=drift_window, drop=drift_drop):
        recent = experiences[-drift_window:]
        parts.append((3, "drifting " + " → ".join(signed(e) for e in recent)))
    elif state.last_experience is not None:
        parts.append((1, f"last experience {EXPERIENCE_LABELS[state.last_experience]}"))
    if earlier_case is not None:
        about = f"{earlier_case.about.lower()} " if earlier_case.about else ""
        when = day_words(earlier_case.opened_at, now, time_zone=time_zone)
        parts.append((2, f"unresolved {about}case of {when}"))
    if not parts:
        return "a regular gone quiet"
    while len(parts) > 1 and len("; ".join(text for _, text in parts)) > MAX_WHY_NOW:
        parts.remove(min(parts))
    line = "; ".join(text for _, text in parts)
    return line if len(line) <= MAX_WHY_NOW else line[: MAX_WHY_NOW - 1].rstrip() + ELLIPSIS

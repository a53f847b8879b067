"""The drift rule and the why-now line, on hand-made narratives (no database)."""

from datetime import UTC, datetime, timedelta

import pytest

from cxcore.rules import NarrativeState
from recovery.care_reasons import (
    MAX_WHY_NOW,
    EarlierCase,
    drifting,
    span_words,
    weekday_pattern,
    why_now,
)

NOW = datetime(2026, 11, 19, 12, 0, tzinfo=UTC)  # a Thursday
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("experiences", "window", "drop", "expected"),
    [
        ([2, 1, 0], 3, 2, True),  # the example
        ([1, 2, 1, 0], 3, 2, True),  # the last three carry it; older ones do not matter
        ([0, 2, 1, 0], 3, 2, True),
        ([2, 2, 0], 3, 2, True),  # flat then down is still non-increasing
        ([2, 1, 1], 3, 2, False),  # slid by 1 only
        ([2, 1, 1], 3, 1, True),  # ... which the organization's drop of 1 counts
        ([2, 0, 1], 3, 2, False),  # rose on the way: not a slide
        ([2, 1, -1], 3, 2, False),  # a negative: recovery's business, not drift
        ([1, 0, -1], 3, 1, False),
        ([1, 0], 3, 1, False),  # fewer than the window
        ([2, 0], 2, 2, True),
        ([2, 2, 2], 3, 1, False),  # steady is not drifting
        ([2, 2, 1, 1, 0], 5, 2, True),
        ([], 3, 2, False),
    ],
)
def test_drifting_needs_a_non_increasing_slide_with_no_negative(
    experiences, window, drop, expected
):
    assert drifting(experiences, window=window, drop=drop) is expected


def mwf_visits(weeks: int, *, last: datetime) -> list[datetime]:
    """Monday, Wednesday and Friday mornings for `weeks` weeks, the last one at `last`."""
    visits: list[datetime] = []
    day = last
    while len(visits) < weeks * 3:
        if day.weekday() in (0, 2, 4):
            visits.append(day)
        day -= DAY
    return visits


def state_of(visits: list[datetime], **fields) -> NarrativeState:
    return NarrativeState(
        first_visit_at=min(visits),
        last_visit_at=max(visits),
        visit_count=len(visits),
        **fields,
    )


def test_a_monday_wednesday_friday_regular_twelve_days_absent():
    last = datetime(2026, 11, 6, 8, 30, tzinfo=UTC)  # a Friday
    visits = mwf_visits(35, last=last)  # ~8 months of mornings
    state = state_of(visits, last_experience=1)
    line = why_now(state=state, visits=visits[:30], experiences=[1, 2, 1], now=NOW - 0 * DAY)
    # 105 visits over 241 days: a mean gap of 2.3 days; 13 days absent is 6× that.
    assert (
        line
        == "Mon/Wed/Fri for 8 months; 13 days absent, 6× their rhythm; last experience positive"
    )


def test_the_weekday_pattern_is_read_in_the_location_time_zone():
    # 23:30 UTC on Sundays is Monday morning in Auckland.
    visits = [datetime(2026, 11, 1, 23, 30, tzinfo=UTC) - 7 * DAY * k for k in range(8)]
    assert weekday_pattern(visits, time_zone="UTC") == (6,)
    assert weekday_pattern(visits, time_zone="Pacific/Auckland") == (0,)
    state = state_of(visits)
    line = why_now(state=state, visits=visits, experiences=[], now=visits[0] + 30 * DAY)
    assert line.startswith("Sundays for 7 weeks; 30 days absent, 4× their rhythm")


@pytest.mark.parametrize(
    ("weekdays", "expected"),
    [
        ([0, 2, 4] * 4, (0, 2, 4)),
        ([5] * 6 + [1, 3], (5,)),  # 75% on Saturdays: one day is enough
        ([5] * 3 + [0] * 3 + [1, 2, 3, 4], (0, 5)),  # two days hold 6 of 10
        ([5] * 2 + [0] * 2 + [1] * 2 + [2, 3, 4, 6], (0, 1, 5)),  # three hold 60% exactly
        ([5] * 2 + [0] * 2 + [1] * 2 + [2, 2, 3, 4, 6], ()),  # four days lead: no pattern
        ([0] * 4 + [2] * 4 + [4] * 3 + [5, 6], (0, 2, 4)),  # Mon/Wed/Fri and a weekend or two
        ([0, 1, 2, 3, 4, 5, 6] * 2, ()),  # spread over the week: no pattern
        ([0, 2, 4, 0], ()),  # too few visits to tell
    ],
)
def test_weekdays_with_most_visits_make_a_pattern_when_they_hold_sixty_percent(weekdays, expected):
    monday = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    visits = [monday + (day - 7 * k) * DAY for k, day in enumerate(weekdays)]
    assert weekday_pattern(visits) == expected


def test_no_weekday_pattern_gives_the_mean_gap():
    first = datetime(2026, 3, 1, 10, tzinfo=UTC)
    visits = [first + 9 * DAY * k for k in range(20)]  # every 9 days: all weekdays in turn
    state = state_of(visits, last_experience=0)
    line = why_now(state=state, visits=visits, experiences=[0], now=max(visits) + 40 * DAY)
    assert (
        line
        == "every ~9 days for 5 months; 40 days absent, 4× their rhythm; last experience neutral"
    )


def test_a_drifting_regular_who_is_not_overdue_says_when_they_were_last_here():
    visits = mwf_visits(10, last=datetime(2026, 11, 18, 8, 0, tzinfo=UTC))
    state = state_of(visits, last_experience=0)
    line = why_now(state=state, visits=visits, experiences=[2, 2, 1, 0], now=NOW)
    assert line == "Mon/Wed/Fri for 2 months; last here yesterday; drifting +2 → +1 → 0"


def test_the_drift_follows_the_organization_window_and_drop():
    visits = mwf_visits(10, last=datetime(2026, 11, 18, 8, 0, tzinfo=UTC))
    state = state_of(visits, last_experience=1)
    experiences = [2, 2, 1, 1]
    assert "drifting" not in why_now(state=state, visits=visits, experiences=experiences, now=NOW)
    line = why_now(
        state=state, visits=visits, experiences=experiences, now=NOW, drift_window=4, drift_drop=1
    )
    assert line.endswith("drifting +2 → +2 → +1 → +1")


def test_an_unresolved_earlier_case_is_named_with_its_day():
    visits = mwf_visits(10, last=datetime(2026, 10, 30, 8, 0, tzinfo=UTC))
    state = state_of(visits, last_experience=-1)
    earlier = EarlierCase(opened_at=datetime(2026, 10, 30, 9, tzinfo=UTC), about="Wait")
    line = why_now(state=state, visits=visits, experiences=[1, -1], now=NOW, earlier_case=earlier)
    assert line == (
        "Mon/Wed/Fri for 2 months; 20 days absent, 9× their rhythm; last experience negative; "
        "unresolved wait case of 30 Oct"
    )
    # Too long for all four parts: the last experience gives way to the case.
    earlier = EarlierCase(opened_at=earlier.opened_at, about="Order accuracy")
    line = why_now(state=state, visits=visits, experiences=[1, -1], now=NOW, earlier_case=earlier)
    assert line == (
        "Mon/Wed/Fri for 2 months; 20 days absent, 9× their rhythm; "
        "unresolved order accuracy case of 30 Oct"
    )
    last_year = EarlierCase(opened_at=datetime(2025, 12, 24, tzinfo=UTC))
    assert why_now(
        state=state, visits=visits, experiences=[], now=NOW, earlier_case=last_year
    ).endswith("; unresolved case of 24 Dec 2025")


def test_the_line_never_passes_its_limit_and_keeps_rhythm_and_gap():
    visits = mwf_visits(10, last=datetime(2026, 10, 30, 8, 0, tzinfo=UTC))
    state = state_of(visits, last_experience=0)
    earlier = EarlierCase(opened_at=NOW - 30 * DAY, about="x" * 200)
    line = why_now(state=state, visits=visits, experiences=[2, 1, 0], now=NOW, earlier_case=earlier)
    assert len(line) <= MAX_WHY_NOW
    assert line == "Mon/Wed/Fri for 2 months; 20 days absent, 9× their rhythm; drifting +2 → +1 → 0"


def test_the_same_narrative_gives_the_same_line_whatever_order_visits_come_in():
    visits = mwf_visits(12, last=datetime(2026, 11, 2, 8, 0, tzinfo=UTC))
    state = state_of(visits, last_experience=2)
    lines = {
        why_now(state=state, visits=order, experiences=[2], now=NOW)
        for order in (visits, visits[::-1], sorted(visits, key=lambda v: v.weekday()))
    }
    assert len(lines) == 1


def test_a_narrative_without_a_rhythm_still_explains_itself():
    one_visit = NarrativeState(
        first_visit_at=NOW - 40 * DAY, last_visit_at=NOW - 40 * DAY, visit_count=1
    )
    assert why_now(state=one_visit, visits=[], experiences=[], now=NOW) == "last here 5 weeks ago"
    assert why_now(state=NarrativeState(), visits=[], experiences=[], now=NOW) == (
        "a regular gone quiet"
    )


@pytest.mark.parametrize(
    ("days", "expected"),
    [(1, "1 day"), (13, "13 days"), (20, "2 weeks"), (59, "8 weeks"), (241, "8 months"),
     (800, "2 years")],
)  # fmt: skip
def test_spans_read_in_the_largest_whole_unit(days, expected):
    assert span_words(timedelta(days=days)) == expected

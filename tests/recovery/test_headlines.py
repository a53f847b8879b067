"""The headline rule: a table of triggers and the line staff read first (≤ 80 characters)."""

from datetime import UTC, datetime, timedelta

import pytest

from recovery.headlines import MAX_HEADLINE, ago, care_headline, first_clause, recovery_headline

NOW = datetime(2026, 11, 19, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
LONG = (
    "The cashier forgot to ring in my salad and almond-milk latte during the fundraiser rush "
    "and nobody noticed"
)


@pytest.mark.parametrize(
    ("first_name", "kind", "labels", "summary", "since", "expected"),
    [
        ("Margaret", "complaint", ["Parking/valet"], "Valet kept her waiting 45 min. Car dusty.",
         6 * DAY, "Margaret — valet kept her waiting 45 min · 6 days ago"),
        ("Daniel", "complaint", ["Order accuracy"], "I left hungry; salad forgotten",
         2 * timedelta(hours=1), "Daniel — I left hungry · 2 h ago"),
        ("Priya", "complaint", ["Wait"], "", DAY, "Priya — complained about wait · yesterday"),
        ("Sam", "feedback", [], "", 20 * DAY, "Sam — had a bad experience · 2 weeks ago"),
        ("Sam", "incident", ["Staff", "Payment"], "", 90 * DAY,
         "Sam — incident: staff and payment · 3 months ago"),
        ("Ann", "feedback", [], "OK but cold coffee", timedelta(minutes=5),
         "Ann — OK but cold coffee · just now"),
        ("", "complaint", [], "Rude - very rude", 3 * DAY, "Customer — rude · 3 days ago"),
        ("Daniel", "complaint", [], LONG, 6 * DAY,
         "Daniel — the cashier forgot to ring in my salad and almond-milk… · 6 days ago"),
    ],
)  # fmt: skip
def test_a_trigger_becomes_its_headline(first_name, kind, labels, summary, since, expected):
    headline = recovery_headline(
        first_name=first_name,
        kind=kind,
        touchpoint_labels=labels,
        summary=summary,
        occurred_at=NOW - since,
        now=NOW,
    )
    assert headline == expected
    assert len(headline) <= MAX_HEADLINE


def test_a_headline_never_passes_eighty_characters_and_keeps_when_and_who():
    for name in ("Al", "Bartholomew-Montgomery " * 4):
        headline = recovery_headline(
            first_name=name.strip(),
            kind="complaint",
            touchpoint_labels=[],
            summary="x" * 500,
            occurred_at=NOW - 6 * DAY,
            now=NOW,
        )
        assert len(headline) <= MAX_HEADLINE
        assert headline.endswith(" · 6 days ago") and headline.startswith(name[:5])


def test_the_first_clause_keeps_capitals_that_mean_something():
    assert first_clause("VIP table was late, again") == "VIP table was late"
    assert first_clause("  Waited   ages!!") == "waited ages"
    assert first_clause("") == ""


@pytest.mark.parametrize(
    ("elapsed", "text"),
    [
        (timedelta(minutes=59), "just now"),
        (timedelta(hours=23), "23 h ago"),
        (timedelta(days=1, hours=5), "yesterday"),
        (timedelta(days=13), "13 days ago"),
        (timedelta(days=20), "2 weeks ago"),
        (timedelta(days=75), "2 months ago"),
        (-timedelta(minutes=5), "just now"),  # a POS clock slightly fast
    ],
)
def test_how_long_ago_reads_as_staff_say_it(elapsed, text):
    assert ago(NOW - elapsed, NOW) == text


def test_a_care_headline_says_why_now():
    assert (
        care_headline(first_name="Priya", usual_gap=7 * DAY, last_visit_at=NOW - 36 * DAY, now=NOW)
        == "Priya — usually weekly, last here 5 weeks ago"
    )
    assert (
        care_headline(first_name="Jo", usual_gap=3 * DAY, last_visit_at=NOW - 20 * DAY, now=NOW)
        == "Jo — usually every 3 days, last here 2 weeks ago"
    )


def test_a_drifting_regulars_headline_says_their_visits_are_going_less_well():
    # A drifting regular is not overdue: the rhythm would say nothing went wrong.
    headline = care_headline(
        first_name="Priya",
        usual_gap=7 * DAY,
        last_visit_at=NOW - 2 * DAY,
        now=NOW,
        drifting=True,
    )
    assert headline == "Priya — recent visits going less well, last here 2 days ago"
    assert len(headline) <= MAX_HEADLINE

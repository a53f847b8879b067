"""The monthly scorecard's figures, from a hand-made October (partners/selectors.py says what
each figure means). Europe/London, outcome window 30 days, looked at on 20 November."""

from datetime import UTC, date, datetime, timedelta

import pytest

from accounts.tenancy import Tenant, tenant_for_user
from partners.selectors import last_full_month, month_bounds, scorecard
from partners.services import answer_incident, fix_incident
from tests.factories import CustomerFactory
from tests.partners.conftest import DELIVERY, VALET, bad_valet, open_beside_case
from tests.recovery.conftest import log

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def at(day: int, hour: int = 19) -> datetime:
    return OCT.replace(day=day, hour=hour)


@pytest.fixture
def october(org, main_st, harbour, valet, courier, owner):
    """Eight valet-tagged visits (six at Main St, two at Harbour Rd; one also tagged delivery),
    one more delivery order, tagged visits outside October and untagged ones; Ann let down by
    the valet twice (Main St), Ben once (Harbour Rd), Cat once late in the month (Main St)."""
    regulars = [CustomerFactory.create(organization=org) for _ in range(4)]
    for i in range(6):
        log(org, regulars[i % 4], at(2 + i), kind="visit", location=main_st, touchpoints=VALET)
    log(org, regulars[0], at(20), kind="visit", location=harbour, touchpoints=VALET)
    log(org, regulars[1], at(21), kind="visit", location=harbour, touchpoints=[*VALET, *DELIVERY])
    log(org, regulars[2], at(22), kind="order", location=main_st, touchpoints=DELIVERY)
    log(org, regulars[3], at(23), kind="visit", location=main_st)  # not tagged
    log(org, regulars[3], OCT - timedelta(days=2), kind="visit", location=main_st,
        touchpoints=VALET)  # September  # fmt: skip
    log(org, regulars[3], OCT.replace(month=11, day=2), kind="visit", location=main_st,
        touchpoints=VALET)  # November  # fmt: skip

    ann, ben, cat = (
        CustomerFactory.create(organization=org, name=n) for n in ("Ann", "Ben", "Cat")
    )
    first = bad_valet(org, ann, at(5), main_st)
    _, (i1,) = open_beside_case(first, at(5, 22))
    # A second failure: the sweep extends her case and opens a second incident beside it.
    _, (i2,) = open_beside_case(bad_valet(org, ann, at(9), main_st), at(9, 22))
    _, (i3,) = open_beside_case(bad_valet(org, ben, at(12), harbour), at(12, 22))
    _, (i4,) = open_beside_case(bad_valet(org, cat, at(30), main_st), at(30, 22))
    answer_incident(
        incident=i1, answer="Short-staffed", by=owner, now=at(5, 22) + timedelta(hours=6)
    )
    fix_incident(incident=i3, by=owner, now=at(12, 22) + timedelta(hours=30))
    # Ann came back ten days after her first failure; Ben only after 40 days.
    log(org, ann, at(15), kind="visit", location=main_st)
    log(org, ben, at(12) + timedelta(days=40), kind="visit", location=harbour)
    return {"incidents": [i1, i2, i3, i4]}


def row_of(card, name):
    (row,) = [r for r in card.rows if r.partner.name == name]
    return row


def tenant(user) -> Tenant:
    found = tenant_for_user(user)
    assert found is not None
    return found


def test_the_valets_october(owner, october):
    card = scorecard(tenant=tenant(owner), month=date(2026, 10, 1), now=NOW)
    assert card.label == "October 2026" and card.outcome_window_days == 30
    row = row_of(card, "Swift Valet Co")
    assert (row.involved_visits, row.failures) == (8, 4)
    assert row.failures_per_100 == 50.0
    # Answered: 6 h (an answer) and 30 h (a fix); the other two not yet.
    assert (row.answered, row.median_hours_to_answer) == (2, 18.0)
    # Ann (back within 30 days) and Ben (not) are measured; Cat's window ends 29 November.
    assert row.affected_customers == 3 and row.still_in_window == 1
    assert (row.returned.numerator, row.returned.denominator, row.returned.value) == (1, 2, 0.5)


def test_the_delivery_apps_october(owner, october):
    row = row_of(scorecard(tenant=tenant(owner), month=date(2026, 10, 1), now=NOW),
                 "QuickBite Delivery")  # fmt: skip
    assert (row.involved_visits, row.failures, row.failures_per_100) == (2, 0, 0.0)
    assert row.median_hours_to_answer is None and row.returned.value is None


def test_a_manager_of_main_st_sees_main_st(manager, october):
    row = row_of(scorecard(tenant=tenant(manager), month=date(2026, 10, 1), now=NOW),
                 "Swift Valet Co")  # fmt: skip
    assert (row.involved_visits, row.failures, row.affected_customers) == (6, 3, 2)
    assert row.failures_per_100 == 50.0


def test_another_month_has_its_own_figures(owner, october):
    row = row_of(scorecard(tenant=tenant(owner), month=date(2026, 11, 1), now=NOW),
                 "Swift Valet Co")  # fmt: skip
    assert (row.involved_visits, row.failures, row.failures_per_100) == (1, 0, 0.0)


def test_the_scorecard_reads_in_a_constant_number_of_queries(
    owner, october, django_assert_max_num_queries
):
    mine = tenant(owner)
    with django_assert_max_num_queries(4):
        scorecard(tenant=mine, month=date(2026, 10, 1), now=NOW)


def test_months_are_the_organizations_calendar_months():
    from zoneinfo import ZoneInfo

    start, end = month_bounds(date(2026, 10, 17), ZoneInfo("Europe/London"))
    assert start == datetime(2026, 9, 30, 23, 0, tzinfo=UTC)  # BST
    assert end == datetime(2026, 11, 1, 0, 0, tzinfo=UTC)  # GMT again
    assert last_full_month(date(2026, 1, 9)) == date(2025, 12, 1)

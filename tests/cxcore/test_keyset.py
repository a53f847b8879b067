"""cxcore/keyset.py: paging by the full key visits every row exactly once, in order, whichever
way each key runs and however many rows tie on the leading keys."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from operator import attrgetter

import pytest

from cxcore.keyset import (
    after_position,
    decode_cursor,
    encode_cursor,
    keyset_page,
    position_of,
)
from cxcore.models import Customer

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
KEYS = ("visit_count", "last_visit_at", "id")
# Every direction for each key: ("visit_count", "last_visit_at", "id") … ("-visit_count", …).
ORDERS = [
    tuple(f"{'-' if down else ''}{key}" for key, down in zip(KEYS, downs, strict=True))
    for downs in itertools.product((False, True), repeat=len(KEYS))
]


@pytest.fixture
def grid(org) -> list[Customer]:
    """27 customers: three of each (visit_count, last_visit_at) pair, so the first two keys tie
    in threes and nines and only the id settles the order."""
    rows = [
        Customer(organization=org, name=f"{count}/{hour}/{n}", visit_count=count,
                 last_visit_at=T0 + timedelta(hours=hour))
        for count, hour, n in itertools.product(range(3), range(3), range(3))
    ]  # fmt: skip
    return Customer.objects.bulk_create(rows)


def expected(rows: list[Customer], order: tuple[str, ...]) -> list[int]:
    """The order worked out in Python: stable sorts from the last key to the first."""
    ranked = list(rows)
    for field in reversed(order):
        ranked.sort(key=attrgetter(field.removeprefix("-")), reverse=field.startswith("-"))
    return [row.pk for row in ranked]


def page_through(qs, order, limit) -> list[list[int]]:
    pages, after = [], None
    while True:
        rows, after = keyset_page(qs, order=order, after=after, limit=limit)
        pages.append([row.pk for row in rows])
        if after is None:
            return pages


@pytest.mark.parametrize("order", ORDERS, ids="/".join)
@pytest.mark.parametrize("limit", [1, 2, 4, 9, 26, 27, 100])
def test_paging_visits_every_row_once_in_order_with_ties_in_every_leading_key(
    grid, org, order, limit
):
    qs = Customer.objects.filter(organization=org)
    pages = page_through(qs, order, limit)
    assert [pk for page in pages for pk in page] == expected(grid, order)
    assert all(len(page) == limit for page in pages[:-1])
    assert 0 < len(pages[-1]) <= limit  # a full last page does not leave an empty one after it


@pytest.mark.parametrize("order", [("-last_visit_at", "-id"), ("visit_count", "id")], ids="/".join)
def test_two_key_orders_page_the_same_way(grid, org, order):
    qs = Customer.objects.filter(organization=org)
    pages = page_through(qs, order, 5)
    assert [pk for page in pages for pk in page] == expected(grid, order)


def test_paging_stays_inside_the_queryset_it_is_given(grid, org, other_org):
    Customer.objects.create(organization=other_org, visit_count=1, last_visit_at=T0)
    qs = Customer.objects.filter(organization=org, visit_count=1)
    pages = page_through(qs, ("-last_visit_at", "id"), 2)
    assert sorted(pk for page in pages for pk in page) == sorted(
        row.pk for row in grid if row.visit_count == 1
    )


def test_an_empty_set_is_one_empty_page(org):
    assert keyset_page(Customer.objects.none(), order=("id",), after=None, limit=3) == ([], None)


def test_the_next_position_survives_a_cursor_round_trip(grid, org):
    order = ("-visit_count", "last_visit_at", "id")
    qs = Customer.objects.filter(organization=org)
    first, after = keyset_page(qs, order=order, after=None, limit=4)
    assert after == position_of(first[-1], order)
    cursor = encode_cursor(*after)
    assert decode_cursor(cursor, shape=(int, datetime, int)) == after
    second, _ = keyset_page(
        qs, order=order, after=decode_cursor(cursor, shape=(int, datetime, int)), limit=4
    )
    assert [row.pk for row in second] == expected(grid, order)[4:8]


def test_a_position_must_have_a_value_for_each_key():
    with pytest.raises(ValueError):
        after_position(("-occurred_at", "-id"), (T0,))

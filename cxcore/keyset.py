"""Keyset paging: the rows after a position in a total order, and cursors for positions.

DRF's CursorPagination positions on the first ordering field only and skips within ties by
offset; this compares the full key, so a page costs the same at any depth. The order must be
total (end it with the primary key) and its fields must not be null.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet

from accounts.errors import InvalidInput
from cxcore.rules import check_date_in_range

Position = tuple[Any, ...]
M = TypeVar("M", bound=Model)

MAX_CURSOR_LENGTH = 200
MAX_DB_INT = 2**63 - 1


def keyset_page(
    qs: QuerySet[M], *, order: Sequence[str], after: Position | None, limit: int
) -> tuple[list[M], Position | None]:
    """Up to `limit` rows of `qs` in `order` (Django's "-field" for descending) that come after
    the position `after`, and the position of the last row if more rows follow (else None).

    Asking for one row more than the page tells whether there is a next page without a count.
    """
    if after is not None:
        qs = qs.filter(after_position(order, after))
    rows = list(qs.order_by(*order)[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, position_of(rows[-1], order)


def after_position(order: Sequence[str], position: Position) -> Q:
    """The rows after `position` in `order`: (a, b, c) after (x, y, z) is a past x, or a = x and
    b past y, or a = x, b = y and c past z, where "past" is > for ascending keys, < for
    descending ones."""
    if len(order) != len(position) or not order:
        raise ValueError(f"A position of {len(order)} values is needed for {order!r}.")
    keys = [(field.removeprefix("-"), field.startswith("-")) for field in order]
    first, descending = keys[0]
    # The bound on the first key lets an index range scan start at the position; the
    # alternatives below settle the ties within it.
    bound = Q(**{f"{first}__{'lte' if descending else 'gte'}": position[0]})
    alternatives, ties = Q(), Q()
    for (name, descending), value in zip(keys, position, strict=True):
        alternatives |= ties & Q(**{f"{name}__{'lt' if descending else 'gt'}": value})
        ties &= Q(**{name: value})
    return bound & alternatives


def position_of(row: Model, order: Sequence[str]) -> Position:
    """Where `row` stands in `order`: the values of its keys."""
    return tuple(getattr(row, field.removeprefix("-")) for field in order)


def encode_cursor(*position: datetime | int) -> str:
    """An opaque cursor for a position in a keyset order, e.g. (occurred_at, id)."""
    values = [v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v for v in position]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(
    cursor: str, shape: tuple[type, ...] = (datetime, int), *, field: str = "cursor"
) -> Position:
    """The position a cursor stands for, checked against the expected shape, or a 400 naming
    `field` (the query parameter it came in)."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(values, list) or len(values) != len(shape):
            raise ValueError
        position: list[Any] = []
        for kind, value in zip(shape, values, strict=True):
            if kind is datetime:
                when = datetime.fromisoformat(value)
                if when.tzinfo is None:
                    raise ValueError
                # Back to UTC: the database refuses some offsets a client could write.
                when = when.astimezone(UTC)
                # No row of ours is outside the range every date keeps to, so neither is a
                # cursor we gave out.
                check_date_in_range(when.date())
                position.append(when)
            elif isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_DB_INT:
                position.append(value)
            else:
                raise ValueError
        return tuple(position)
    except (ValueError, TypeError, UnicodeError, OverflowError, RecursionError) as exc:
        raise InvalidInput("Not a cursor this API gave out.", field=field) from exc

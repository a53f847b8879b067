"""True keyset cursors, e.g. on (occurred_at, id) or (severity, opened_at, id).

DRF's CursorPagination positions on the first ordering field only and skips within ties by
offset; ours compares the full key, so a page costs the same at any depth.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from urllib.parse import urlencode

from rest_framework.request import Request

from accounts.errors import InvalidInput

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


MAX_CURSOR_LENGTH = 200
MAX_DB_INT = 2**63 - 1


def encode_cursor(*position: datetime | int) -> str:
    """An opaque cursor for a position in a keyset order, e.g. (occurred_at, id)."""
    values = [v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v for v in position]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, shape: tuple[type, ...] = (datetime, int)) -> tuple:
    """The position a cursor stands for, checked against the expected shape, or a 400."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(values, list) or len(values) != len(shape):
            raise ValueError
        position = []
        for kind, value in zip(shape, values, strict=True):
            if kind is datetime:
                when = datetime.fromisoformat(value)
                if when.tzinfo is None:
                    raise ValueError
                # Back to UTC: the database refuses some offsets a client could write.
                position.append(when.astimezone(UTC))
            elif isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_DB_INT:
                position.append(value)
            else:
                raise ValueError
        return tuple(position)
    except (ValueError, TypeError, UnicodeError, OverflowError, RecursionError) as exc:
        raise InvalidInput("Not a cursor this API gave out.", field="cursor") from exc


def page_size_from(request: Request) -> int:
    raw = request.query_params.get("page_size")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    if (
        not (raw.isascii() and raw.isdigit() and len(raw) <= 3)
        or not 1 <= int(raw) <= MAX_PAGE_SIZE
    ):
        raise InvalidInput(f"A whole number from 1 to {MAX_PAGE_SIZE}.", field="page_size")
    return int(raw)


def next_link(request: Request, cursor: str) -> str:
    params = {k: v for k, v in request.query_params.items() if k != "cursor"}
    params["cursor"] = cursor
    return request.build_absolute_uri(request.path) + "?" + urlencode(params)

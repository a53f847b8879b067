"""A true keyset cursor on (occurred_at, id).

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


def encode_cursor(occurred_at: datetime, episode_id: int) -> str:
    raw = json.dumps([occurred_at.astimezone(UTC).isoformat(), episode_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MAX_CURSOR_LENGTH = 200


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError
        padded = cursor + "=" * (-len(cursor) % 4)
        occurred_at, episode_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        when = datetime.fromisoformat(occurred_at)
        if not isinstance(episode_id, int) or when.tzinfo is None or not 0 < episode_id < 2**63:
            raise ValueError
        # Back to UTC: the database refuses some offsets a client could write.
        return when.astimezone(UTC), episode_id
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

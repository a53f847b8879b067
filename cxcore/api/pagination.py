"""Keyset pages over HTTP: `?cursor=` and `?page_size=` in, `{"next": …, "results": …}` out.

The paging itself (and what a cursor holds) is `cxcore.keyset`; this module is the API's side
of it, shared by every list that pages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request

from accounts.errors import InvalidInput
from cxcore.api.schema import EMPTY_VALUE_REFUSED, ThrottledAutoSchema
from cxcore.keyset import MAX_CURSOR_LENGTH, Position, decode_cursor, encode_cursor

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

# `format: cursor` says the value is opaque: only what a page's `next` carried is a cursor (any
# other string is a 400). Fuzzers learn to make one from tests/schemathesis_hooks.py.
PAGE_PARAMETERS = [
    OpenApiParameter(
        "cursor",
        {"type": "string", "format": "cursor", "maxLength": MAX_CURSOR_LENGTH},
        description="From the previous page's `next`; opaque.",
    ),
    OpenApiParameter(
        "page_size",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE},
        description=f"1–{MAX_PAGE_SIZE}, default {DEFAULT_PAGE_SIZE}.",
        # Unlike the other parameters, `?page_size=` is a 400, not the default (cxcore.api.schema).
        extensions={EMPTY_VALUE_REFUSED: True},
    ),
]


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


def position_from(
    request: Request, shape: tuple[type, ...] = (datetime, int), *, param: str = "cursor"
) -> Position | None:
    """Where the page starts: the position `?cursor=` (or `param`) stands for (a 400 naming
    the parameter if it is not ours)."""
    cursor = request.query_params.get(param)
    return decode_cursor(cursor, shape=shape, field=param) if cursor else None


def next_link(request: Request, position: Position | None, *, param: str = "cursor") -> str | None:
    """This request's URL with the cursor for `position` in `param`, or None on the last page."""
    if position is None:
        return None
    params = {k: v for k, v in request.query_params.items() if k != param}
    params[param] = encode_cursor(*position)
    return request.build_absolute_uri(request.path) + "?" + urlencode(params)


class KeysetPageSchema(ThrottledAutoSchema):
    """A page is one object ({next, results}), so drf-spectacular does not take the view for a
    list and would leave out its filter backends' parameters; this puts them back."""

    def get_filter_backends(self) -> list[Any]:
        return list(getattr(self.view, "filter_backends", []))

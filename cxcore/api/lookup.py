"""Lookups by phone, email, card or POS id take their identifiers in a POST body as well as in
the query string: a body is in no URL, so not in a proxy's or a browser's history (and the
access logs redact lookups' queries: cxcore/access_log.py)."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request


def lookup_data(request: Request) -> Any:
    """A lookup's parameters: the body of a POST, else the query string."""
    return request.data if request.method == "POST" else request.query_params

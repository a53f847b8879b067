"""Chunked request bodies (`Transfer-Encoding: chunked`, no `Content-Length`) are read, or
refused with a 411 that says why; never taken for an empty body.

Django reads a body by CONTENT_LENGTH, and a chunked request has none, so without this a POS
that streams its JSON got "customer: this field is required" for a body it did send. gunicorn
de-chunks the body and says so (`wsgi.input_terminated`): the body is read here, up to the
size Django would accept (DATA_UPLOAD_MAX_MEMORY_SIZE) and one byte more, and handed on with
its length, so the API's 413 (cxcore.middleware.ApiBodyLimitMiddleware) and Django's own
limits apply as to any other body. A server that does not de-chunk (runserver's wsgiref)
cannot give the body at all: that is a 411 naming the header, JSON like the API's errors.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

LENGTH_REQUIRED = "411 Length Required"


def is_chunked(environ: dict[str, Any]) -> bool:
    codings = environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    return "chunked" in codings and not environ.get("CONTENT_LENGTH")


def length_required(start_response: Callable[..., Any]) -> Iterable[bytes]:
    message = (
        "This server cannot read a chunked request body (Transfer-Encoding: chunked): "
        "send it with a Content-Length."
    )
    body = json.dumps(
        {
            "error": "length_required",
            "message": f"Transfer-Encoding: {message}",
            "errors": [
                {"field": "Transfer-Encoding", "code": "length_required", "message": message}
            ],
        }
    ).encode()
    start_response(
        LENGTH_REQUIRED,
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


class ChunkedBodies:
    """WSGI middleware around the Django application (cxcore/wsgi.py)."""

    def __init__(self, app: Callable[..., Any], *, max_bytes: Callable[[], int]) -> None:
        self.app = app
        self.max_bytes = max_bytes  # read per request: settings may change under tests

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if is_chunked(environ):
            if not environ.get("wsgi.input_terminated"):
                return length_required(start_response)
            # One byte past the limit is enough to be refused as too large downstream.
            body = environ["wsgi.input"].read(self.max_bytes() + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)

"""COPY's text format, written by hand: a chunk of rows as one string is many times cheaper
than psycopg adapting each value of each row (`Copy.write_row`)."""

from __future__ import annotations

# A backslash, tab, newline or carriage return in a value is escaped.
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
NULL = "\\N"


def copy_field(value: str | None) -> str:
    return NULL if value is None else value.translate(COPY_ESCAPES)

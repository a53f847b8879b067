"""What text may hold where it can spoof: emails, names and free text. Pure, no ORM.

Decided per kind of field:

- **Emails** (a customer's identifier, wherever one enters: the API, bulk items, the sidebar
  and search lookups, the pages' search boxes): Django's EmailValidator, and on top of it
  exactly one `@` (its quoted local parts allow `"a@b"@example.com`) and no control or bidi
  character (its domain pattern allows U+202E, which shows `moc.elpmaxe@` for
  `example.com`). Stored lower-case.
- **Names** (a customer's name: the API, bulk items; the till's headline starts with it): no
  control character at all (not even a newline: a name is one line) and no bidi control
  (U+200E/F, U+202A–E, U+2066–9), which would reorder what staff read ("Margaret — valet…"
  with an override shows another name, or pushes the rest of the line around).
- **Free text** (an episode's summary, a customer's notes): no control character but tab,
  newline and carriage return, and no bidi embedding, override or isolate (U+202A–E,
  U+2066–9): those make text display in an order other than the one stored ("Trojan
  Source"). The left-to-right and right-to-left marks (U+200E/F) stay allowed: they only
  place punctuation next to Arabic or Hebrew text and cannot reorder a run.

A refused value is an InvalidInput naming its field (code `invalid_characters`), never
silently cleaned: what the client sent is what is stored, or nothing is.
"""

from __future__ import annotations

from accounts.errors import InvalidInput

# The characters and the email rule are accounts.validators' (the lowest layer: the accounts'
# own emails keep to them too); which field takes which rule is decided here.
from accounts.validators import (  # noqa: F401  (re-exported: this module's vocabulary)
    BIDI_CONTROLS,
    BIDI_MARKS,
    BIDI_REORDERING,
    email_problem,
    is_control,
    name_problem,
)

FREE_TEXT_CONTROLS_ALLOWED = frozenset("\t\n\r")


def free_text_problem(text: str) -> str:
    """What in `text` it cannot hold as free text ("" if nothing)."""
    for char in text:
        if is_control(char) and char not in FREE_TEXT_CONTROLS_ALLOWED:
            return f"a control character (U+{ord(char):04X})"
        if char in BIDI_REORDERING:
            return f"a text direction override (U+{ord(char):04X})"
    return ""


def storable_problem(text: str) -> str:
    """What in `text` PostgreSQL's text and JSON cannot store ("" if nothing): a NUL, or a
    lone surrogate (not UTF-8). JSON may escape either, so either can arrive."""
    if "\x00" in text:
        return "a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone surrogate"
    return ""


def check_name(text: str, *, field: str) -> None:
    problem = name_problem(text)
    if problem:
        raise InvalidInput(f"Must not hold {problem}.", field=field, code="invalid_characters")


def check_free_text(text: str, *, field: str) -> None:
    problem = free_text_problem(text)
    if problem:
        raise InvalidInput(f"Must not hold {problem}.", field=field, code="invalid_characters")


def normalize_email(raw: str, *, field: str = "email") -> str:
    """An email address as stored (lower-case), or an InvalidInput naming `field`."""
    value = raw.strip()
    problem = email_problem(value)
    if problem is None:
        return value.lower()
    shown = repr(value[:80].encode("unicode_escape").decode("ascii"))
    reason = f": {problem}" if problem else ""
    raise InvalidInput(
        f"{shown} is not an email address{reason}.", field=field, code="invalid_email"
    )

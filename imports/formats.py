"""Reading a customers export: which column holds what, and each row's clean values or the
reason it is refused. Pure: no ORM, so the rules are tested without a database.

Square's customer export is matched by header name (case, spaces and a byte-order mark do not
matter; unknown columns and the address fields are ignored). Any other CSV is `generic`: the
owner says which column holds which field (`--map "Mobile=phone"`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneMetadata

from accounts.errors import InvalidInput
from cxcore.rules import normalize_phone
from cxcore.text_rules import free_text_problem, name_problem, normalize_email

# The fields a column can feed, and what the page calls them.
CUSTOMER_FIELDS: dict[str, str] = {
    "name": "Full name",
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email",
    "phone": "Phone",
    "pos_id": "POS customer id",
    "notes": "Notes",
    "consent": "Marketing-email consent",
}

# Square's customer export: header (as `header_key` reads it) → field. Square Customer ID is
# the POS's id for the person; Reference ID, Birthday, First/Last Visit, Transaction Count,
# Instant Profile and the address fields are read by nothing here (visits come from the
# history import, which derives the narrative from real episodes).
SQUARE_COLUMNS: dict[str, str] = {
    "first name": "first_name",
    "last name": "last_name",
    "given name": "first_name",
    "family name": "last_name",
    "email address": "email",
    "email": "email",
    "phone number": "phone",
    "phone": "phone",
    "memo": "notes",
    "square customer id": "pos_id",
    "email subscription status": "consent",
}

# Square's "Email Subscription Status" and the words a generic file uses for consent.
CONSENT_WORDS: dict[str, str | None] = {
    "subscribed": "yes",
    "yes": "yes",
    "y": "yes",
    "true": "yes",
    "1": "yes",
    "opted in": "yes",
    "unsubscribed": "no",
    "not subscribed": "no",
    "no": "no",
    "n": "no",
    "false": "no",
    "0": "no",
    "opted out": "no",
    "unknown": None,
    "": None,
}

# The rejected-rows download puts an apostrophe before a cell a spreadsheet would read as a
# formula ('+44…'); reading it back takes the apostrophe off again.
SPREADSHEET_ESCAPED = frozenset("=+-@")

NAME_MAX = 200
IDENTIFIER_MAX = 254
NOTES_MAX = 2000


def header_key(header: str) -> str:
    """How a header is compared: no BOM, no surrounding or doubled spaces, lower case."""
    return " ".join(header.replace("\ufeff", "").split()).casefold()


class MappingError(ValueError):
    """A column mapping that cannot work; `field` names what to fix."""

    def __init__(self, message: str, *, field: str = "map") -> None:
        super().__init__(message)
        self.field = field


def parse_map_arguments(pairs: Sequence[str]) -> dict[str, str]:
    """`["Mobile=phone", "E-mail=email"]` → {"Mobile": "phone", …}; a MappingError if not."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, sep, field = pair.rpartition("=")
        if not sep or not column.strip():
            raise MappingError(f"--map {pair!r}: write COLUMN=field.")
        field = field.strip()
        if field not in CUSTOMER_FIELDS:
            known = ", ".join(CUSTOMER_FIELDS)
            raise MappingError(f"--map {pair!r}: {field!r} is not a field ({known}).")
        mapping[column.strip()] = field
    return mapping


def column_fields(
    headers: Sequence[str], *, format: str, column_map: Mapping[str, str] | None = None
) -> dict[int, str]:
    """{column index: field} for a file's header row; a MappingError if nothing identifies."""
    fields: dict[int, str] = {}
    if format == "square":
        for index, header in enumerate(headers):
            field = SQUARE_COLUMNS.get(header_key(header))
            if field and field not in fields.values():
                fields[index] = field
    elif format == "generic":
        wanted = {header_key(column): field for column, field in (column_map or {}).items()}
        unknown_fields = set(wanted.values()) - set(CUSTOMER_FIELDS)
        if unknown_fields:
            raise MappingError(f"{sorted(unknown_fields)[0]!r} is not a field.")
        present = {header_key(header) for header in headers}
        missing = [column for column in (column_map or {}) if header_key(column) not in present]
        if missing:
            raise MappingError(f"The file has no column {missing[0]!r}.")
        for index, header in enumerate(headers):
            field = wanted.get(header_key(header))
            if field and field not in fields.values():
                fields[index] = field
    else:
        raise MappingError(f"{format!r} is not a customers format.", field="format")
    if not {"phone", "email", "pos_id"} & set(fields.values()):
        expected = (
            "Phone Number, Email Address or Square Customer ID"
            if format == "square"
            else "a column mapped to phone, email or pos_id"
        )
        raise MappingError(f"The file needs {expected} to know customers by.", field="file")
    return fields


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """One row's clean values: identifiers normalised, None where the cell was blank."""

    name: str | None
    email: str | None
    phone: str | None
    pos_id: str | None
    notes: str | None
    consent: str | None  # "yes" | "no" | None (blank or unknown: changes nothing)


@lru_cache(maxsize=256)
def _dialling(country: str) -> tuple[int, str] | None:
    metadata = PhoneMetadata.metadata_for_region(country)
    if metadata is None or metadata.country_code is None:
        return None
    return metadata.country_code, metadata.national_prefix or ""


PHONE_PUNCTUATION = str.maketrans("", "", " -().\u00a0")


def fast_phone(raw: str, country: str) -> str | None:
    """The E.164 form of the two common shapes, "+44 7400 200123" and "07400 200123" (the
    country's own number with its national prefix), or None to take the full parser.

    phonenumbers.parse costs ~40 µs a number, more than the rest of a row's import together;
    building the number from its digits and checking it for the country gives the same answer
    for these shapes in a third of the time (tests/imports/test_formats.py compares the two).
    """
    dialling = _dialling(country)
    if dialling is None:
        return None
    code, prefix = dialling
    text = raw.translate(PHONE_PUNCTUATION)
    if text.startswith("+"):
        digits, code_digits = text[1:], str(code)
        if not digits.startswith(code_digits):
            return None
        national = digits[len(code_digits) :]
    elif prefix and text.startswith(prefix):
        national = text[len(prefix) :]
    else:
        return None
    if not (national.isascii() and national.isdigit()) or national[:1] in ("", "0"):
        return None
    if not 4 <= len(national) <= 14:
        return None
    number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    if not phonenumbers.is_valid_number_for_region(number, country):
        return None
    return f"+{code}{national}"


@lru_cache(maxsize=65536)
def _phone(raw: str, country: str) -> str:
    return fast_phone(raw, country) or normalize_phone(raw, country)


def clean_customer_row(
    cells: Sequence[str], fields: Mapping[int, str], *, country: str
) -> CustomerRow | str:
    """The row's clean values, or the reason it is refused (one sentence naming the column)."""
    values: dict[str, str] = {}
    width = len(cells)
    for index, field in fields.items():
        if index < width:
            value = cells[index].strip()
            if value[:1] == "'" and value[1:2] in SPREADSHEET_ESCAPED:
                value = value[1:]  # our own rejected-rows download, fixed and uploaded again
            if value:
                values[field] = value
    name = values.get("name") or " ".join(
        part for part in (values.get("first_name"), values.get("last_name")) if part
    )
    if name:
        if len(name) > NAME_MAX:
            return f"The name is longer than {NAME_MAX} characters."
        problem = name_problem(name)
        if problem:
            return f"The name holds {problem}."
    email = values.get("email")
    if email is not None:
        try:
            email = normalize_email(email)
        except InvalidInput as exc:
            return f"Email: {exc}"
        if len(email) > IDENTIFIER_MAX:
            return f"The email is longer than {IDENTIFIER_MAX} characters."
    phone = values.get("phone")
    if phone is not None:
        try:
            phone = _phone(phone, country)
        except InvalidInput as exc:
            return f"Phone: {exc}"
    pos_id = values.get("pos_id")
    if pos_id is not None:
        if len(pos_id) > IDENTIFIER_MAX:
            return f"The customer id is longer than {IDENTIFIER_MAX} characters."
        problem = name_problem(pos_id)
        if problem:
            return f"The customer id holds {problem}."
    if email is None and phone is None and pos_id is None:
        return "No phone, email or customer id to know the customer by."
    notes = values.get("notes")
    if notes is not None:
        if len(notes) > NOTES_MAX:
            return f"The memo is longer than {NOTES_MAX} characters."
        problem = free_text_problem(notes)
        if problem:
            return f"The memo holds {problem}."
    consent_word = values.get("consent", "")
    consent = CONSENT_WORDS.get(header_key(consent_word))
    if consent_word and header_key(consent_word) not in CONSENT_WORDS:
        return f"Consent {consent_word[:40]!r} is not one of subscribed, unsubscribed, unknown."
    return CustomerRow(
        name=name or None,
        email=email,
        phone=phone,
        pos_id=pos_id,
        notes=notes,
        consent=consent,
    )

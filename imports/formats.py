"""Reading a customers export: which column holds what, and each row's clean values or the
reason it is refused. Pure: no ORM, so the rules are tested without a database.

Square's customer export is matched by header name (case, spaces and a byte-order mark do not
matter; unknown columns and the address fields are ignored). Any other CSV is `generic`: the
owner says which column holds which field (`--map "Mobile=phone"`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import NamedTuple

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


class CustomerRow(NamedTuple):
    """One row's clean values: identifiers normalised, None where the cell was blank. A
    NamedTuple: a million are built per file, and a tuple is the cheapest immutable record."""

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

# The number types phonenumbers' validity check walks (_number_type_helper), in its order.
_NUMBER_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
)


def _desc_fits(desc: object, length: int) -> re.Pattern[str] | None:
    """A number description's pattern if a national number of `length` digits can be one."""
    pattern = getattr(desc, "national_number_pattern", None) if desc is not None else None
    if not pattern:
        return None
    lengths = getattr(desc, "possible_length", ()) or ()
    if lengths and length not in lengths:
        return None
    return re.compile(pattern)


@lru_cache(maxsize=4096)
def _validity(country: str, length: int) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """(the general pattern, one alternation of every type's pattern) for national numbers of
    `length` digits in `country`: phonenumbers' is_valid_number_for_region, compiled once per
    length instead of walked type by type for every number."""
    metadata = PhoneMetadata.metadata_for_region(country)
    if metadata is None:
        return None, None
    general = _desc_fits(metadata.general_desc, length)
    names = list(_NUMBER_TYPES)
    # The helper looks at mobile apart only when its pattern is not the fixed line's.
    if not metadata.same_mobile_and_fixed_line_pattern:
        names.append("mobile")
    patterns = [
        fits.pattern
        for name in names
        if (fits := _desc_fits(getattr(metadata, name, None), length)) is not None
    ]
    typed = re.compile("|".join(f"(?:{pattern})" for pattern in patterns)) if patterns else None
    return general, typed


def valid_national_number(national: str, country: str) -> bool:
    """Whether `national` (digits, no leading zero) is a valid number of `country`, exactly as
    phonenumbers.is_valid_number_for_region decides (tests/imports/test_formats.py compares)."""
    general, typed = _validity(country, len(national))
    return (
        general is not None
        and typed is not None
        and general.fullmatch(national) is not None
        and typed.fullmatch(national) is not None
    )


def fast_phone(raw: str, country: str) -> str | None:
    """The E.164 form of the two common shapes, "+44 7400 200123" and "07400 200123" (the
    country's own number with its national prefix), or None to take the full parser.

    phonenumbers.parse costs ~40 µs a number, more than the rest of a row's import together;
    building the number from its digits and checking it with the country's patterns compiled
    once gives the same answer for these shapes in a fraction of the time
    (tests/imports/test_formats.py compares the two).
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
    if not valid_national_number(national, country):
        return None
    return f"+{code}{national}"


@lru_cache(maxsize=65536)
def _phone(raw: str, country: str) -> str:
    return fast_phone(raw, country) or normalize_phone(raw, country)


# What name_problem and free_text_problem look for, as one search each: most cells hold none,
# and a regex scan is far cheaper than their per-character loop (which still words the reason).
# Control characters are Unicode's Cc: U+0000–U+001F and U+007F–U+009F.
_NAME_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_FREE_TEXT_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

# An address that Django's EmailValidator and email_problem certainly accept (a plain dot-atom
# at an ASCII host name): lower-cased here; anything else goes through normalize_email.
_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def _name_problem(text: str) -> str:
    return name_problem(text) if _NAME_UNSAFE.search(text) else ""


def _free_text_problem(text: str) -> str:
    return free_text_problem(text) if _FREE_TEXT_UNSAFE.search(text) else ""


def clean_email(raw: str) -> str:
    """normalize_email's answer (InvalidInput if not an address), the common case fast."""
    if len(raw) <= IDENTIFIER_MAX and _PLAIN_EMAIL.fullmatch(raw):
        return raw.lower()
    return normalize_email(raw)


@lru_cache(maxsize=64)
def _consent_word(word: str) -> tuple[bool, str | None]:
    key = header_key(word)
    return key in CONSENT_WORDS, CONSENT_WORDS.get(key)


RowCleaner = Callable[[Sequence[str]], "CustomerRow | str"]


def row_cleaner(fields: Mapping[int, str], *, country: str) -> RowCleaner:
    """clean_customer_row for one file's columns, with the columns looked up once: the reader
    calls it for every row."""
    where = {field: index for index, field in fields.items()}
    name_at = where.get("name")
    first_at = where.get("first_name")
    last_at = where.get("last_name")
    email_at = where.get("email")
    phone_at = where.get("phone")
    pos_id_at = where.get("pos_id")
    notes_at = where.get("notes")
    consent_at = where.get("consent")
    escaped = SPREADSHEET_ESCAPED

    def cell(cells: Sequence[str], width: int, index: int | None) -> str | None:
        if index is None or index >= width:
            return None
        value = cells[index].strip()
        if value[:1] == "'" and value[1:2] in escaped:
            value = value[1:]  # our own rejected-rows download, fixed and uploaded again
        return value or None

    def clean(cells: Sequence[str]) -> CustomerRow | str:
        width = len(cells)
        name = cell(cells, width, name_at)
        if name is None:
            first, last = cell(cells, width, first_at), cell(cells, width, last_at)
            name = f"{first} {last}" if first and last else first or last
        if name is not None:
            if len(name) > NAME_MAX:
                return f"The name is longer than {NAME_MAX} characters."
            problem = _name_problem(name)
            if problem:
                return f"The name holds {problem}."
        email = cell(cells, width, email_at)
        if email is not None:
            try:
                email = clean_email(email)
            except InvalidInput as exc:
                return f"Email: {exc}"
            if len(email) > IDENTIFIER_MAX:
                return f"The email is longer than {IDENTIFIER_MAX} characters."
        phone = cell(cells, width, phone_at)
        if phone is not None:
            try:
                phone = _phone(phone, country)
            except InvalidInput as exc:
                return f"Phone: {exc}"
        pos_id = cell(cells, width, pos_id_at)
        if pos_id is not None:
            if len(pos_id) > IDENTIFIER_MAX:
                return f"The customer id is longer than {IDENTIFIER_MAX} characters."
            problem = _name_problem(pos_id)
            if problem:
                return f"The customer id holds {problem}."
        if email is None and phone is None and pos_id is None:
            return "No phone, email or customer id to know the customer by."
        notes = cell(cells, width, notes_at)
        if notes is not None:
            if len(notes) > NOTES_MAX:
                return f"The memo is longer than {NOTES_MAX} characters."
            problem = _free_text_problem(notes)
            if problem:
                return f"The memo holds {problem}."
        consent = None
        consent_word = cell(cells, width, consent_at)
        if consent_word is not None:
            known, consent = _consent_word(consent_word)
            if not known:
                return (
                    f"Consent {consent_word[:40]!r} is not one of subscribed, unsubscribed, "
                    "unknown."
                )
        return CustomerRow(name, email, phone, pos_id, notes, consent)

    return clean


def clean_customer_row(
    cells: Sequence[str], fields: Mapping[int, str], *, country: str
) -> CustomerRow | str:
    """The row's clean values, or the reason it is refused (one sentence naming the column)."""
    return row_cleaner(fields, country=country)(cells)

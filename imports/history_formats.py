"""Square's transactions and item-details exports, read row by row: pure, no ORM.

Each row becomes clean values, a `Skipped` (a row that is not about a known visit: a pending
payment, a walk-in without a customer, a refunded item line) or a `Rejection` naming its line
in the file (the header is line 1) and why. Headers are matched by name, whatever their case,
spacing or byte-order mark; columns we do not use are ignored.

Square writes the date, the time and the time zone in three columns ("2024-03-15",
"13:45:12", "Pacific Time (US & Canada)"), and money with its symbol ("$12.50", "-$3.00",
"£1,234.50").
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cxcore.rules import EARLIEST_DATE, LATEST_DATE
from cxcore.text_rules import free_text_problem, name_problem

SQUARE_TRANSACTIONS = "square-transactions"
SQUARE_ITEMS = "square-items"
HISTORY_FORMATS = (SQUARE_TRANSACTIONS, SQUARE_ITEMS)
FORMAT_LABELS = {
    SQUARE_TRANSACTIONS: "Square transactions export",
    SQUARE_ITEMS: "Square item details export",
}

# external_id holds 128 characters; a refund's key is "refund:<id>:<date> <time>".
MAX_TRANSACTION_ID = 80
MAX_ITEM_NAME = 200
MAX_REASON = 500
# What Customer.total_spend and an item's price can hold, with room for a long history.
MAX_AMOUNT = Decimal("99999999.99")
CENT = Decimal("0.01")


class FileRefused(Exception):
    """The file as a whole cannot be read as the format (a column it needs is missing)."""


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str


@dataclass(frozen=True)
class Skipped:
    line: int
    why: str  # not_completed | no_customer | refund_line


@dataclass(frozen=True)
class LocalTime:
    """A wall-clock time and the zone Square named for it ("" when the cell was blank)."""

    at: datetime  # naive
    zone: str


@dataclass(frozen=True)
class TransactionRow:
    line: int
    is_refund: bool
    transaction_id: str
    when: LocalTime
    amount: Decimal  # what was collected (refunds: what was given back), never negative
    amount_text: str  # as Square wrote it, without the sign: "$3.00"
    customer_id: str
    location: str
    reason: str  # a refund's reason, as staff typed it in Square

    @property
    def external_id(self) -> str:
        """One episode per payment; a refund of it is another episode (several refunds of one
        payment differ by their time)."""
        if not self.is_refund:
            return self.transaction_id
        return f"refund:{self.transaction_id}:{self.when.at:%Y-%m-%d %H:%M:%S}"


@dataclass(frozen=True)
class ItemLine:
    line: int
    transaction_id: str
    when: LocalTime
    name: str
    quantity: int
    price: Decimal  # one unit's price
    customer_id: str
    location: str


# --- headers ---------------------------------------------------------------------------------


def header_key(header: str) -> str:
    """'\\ufeffTransaction  ID ' and 'transaction id' read the same."""
    return " ".join(header.replace("\ufeff", "").split()).casefold()


# Our name for each column we read, from Square's header (as header_key reads it).
TRANSACTION_COLUMNS = {
    "date": "date",
    "time": "time",
    "time zone": "time_zone",
    "total collected": "total_collected",
    "net sales": "net_sales",
    "gross sales": "gross_sales",
    "transaction id": "transaction_id",
    "customer id": "customer_id",
    "location": "location",
    "event type": "event_type",
    "transaction status": "status",
    "refund reason": "refund_reason",
    "description": "description",
}
ITEM_COLUMNS = {
    "date": "date",
    "time": "time",
    "time zone": "time_zone",
    "item": "item",
    "price point name": "price_point",
    "qty": "qty",
    "gross sales": "gross_sales",
    "transaction id": "transaction_id",
    "customer id": "customer_id",
    "location": "location",
    "event type": "event_type",
}
REQUIRED = {
    SQUARE_TRANSACTIONS: ("date", "time", "transaction_id", "customer_id"),
    SQUARE_ITEMS: ("date", "time", "transaction_id", "customer_id", "item", "gross_sales"),
}
COLUMNS = {SQUARE_TRANSACTIONS: TRANSACTION_COLUMNS, SQUARE_ITEMS: ITEM_COLUMNS}
SHOWN_HEADERS = {
    "transaction_id": "Transaction ID",
    "customer_id": "Customer ID",
    "gross_sales": "Gross Sales",
}


def read_rows(lines: Iterable[str], fmt: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {our column: cell}) for each record after the header.

    `lines` is the file opened as text with newline="" (csv's own rule, so a quoted cell
    may hold a line break); a record's number is the line it starts on. The header is read
    and checked here, before any row: a file that is not the format raises FileRefused at once.
    """
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise FileRefused("The file is empty.") from None
    names = COLUMNS[fmt]
    positions = {names[key]: i for i, h in enumerate(header) if (key := header_key(h)) in names}
    missing = [c for c in REQUIRED[fmt] if c not in positions]
    if missing:
        shown = [SHOWN_HEADERS.get(c, c.replace("_", " ").title()) for c in missing]
        listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
        raise FileRefused(f"Not a {FORMAT_LABELS[fmt]}: it has no {listed} column.")
    return _records(reader, positions)


def _records(reader: Any, positions: dict[str, int]) -> Iterator[tuple[int, dict[str, str]]]:
    names = tuple(positions)
    # Our cells of a row in one C-level call: a million rows spend their time here.
    pick = itemgetter(*positions.values(), 0)  # (column 0 again: a tuple even for one name)
    width = max(positions.values()) + 1
    end = reader.line_num
    for cells in reader:
        start, end = end + 1, reader.line_num
        if not any(map(str.strip, cells)):
            continue  # a blank line (Square ends some exports with one)
        if len(cells) < width:  # a short row: the missing cells are blank
            cells = cells + [""] * (width - len(cells))
        yield start, dict(zip(names, map(str.strip, pick(cells)), strict=False))


# --- values ----------------------------------------------------------------------------------

_SYMBOLS = re.compile(r"^[^\d\-+(.,]*")  # "$", "£", "US$", "CA$ ", "€"
_DECIMAL_COMMA = re.compile(r"^\d{1,3}(\.\d{3})*,\d{1,2}$|^\d+,\d{1,2}$")


class BadValue(ValueError):
    pass


# More of one item on one line than any cafe sells: a typo, or not a quantity.
MAX_QUANTITY = 10_000


@lru_cache(maxsize=8192)  # a cafe's prices repeat: most rows are a lookup
def parse_money(raw: str) -> Decimal | None:
    """'$12.50' → 12.50, '-$3.00' and '($3.00)' → -3.00, '£1,234.50' → 1234.50,
    '1.234,50 €' → 1234.50; blank → None."""
    text = raw.strip().replace("\u00a0", "").replace(" ", "")
    if not text:
        return None
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1]
    if text.startswith("-"):
        negative, text = not negative, text[1:]
    text = _SYMBOLS.sub("", text)
    if text.startswith("-"):  # "$-3.00"
        negative, text = not negative, text[1:]
    text = re.sub(r"[^\d.,]+$", "", text)  # a trailing symbol or code: "12.50 €", "12.50USD"
    if _DECIMAL_COMMA.match(text):
        text = text.replace(".", "").replace(",", ".")
    else:
        text = text.replace(",", "")
    if not re.fullmatch(r"\d+(\.\d+)?|\.\d+", text):
        raise BadValue(f"{raw.strip()[:40]!r} is not an amount")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise BadValue(f"{raw.strip()[:40]!r} is not an amount") from None
    if value > MAX_AMOUNT:
        raise BadValue(f"{raw.strip()[:40]!r} is too large")
    value = value.quantize(CENT)
    return -value if negative else value


@lru_cache(maxsize=8192)  # a year of exports holds a few hundred dates
def parse_date(raw: str, *, day_first: bool) -> date:
    """'2024-03-15'; '03/15/2024' (or '15/03/2024' where the day comes first); two-digit
    years are this century's."""
    text = raw.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", text):
            year, month, day = (int(p) for p in text.split("-"))
        elif m := re.fullmatch(r"(\d{1,2})[/.](\d{1,2})[/.](\d{2}|\d{4})", text):
            first, second, year = int(m[1]), int(m[2]), int(m[3])
            year += 2000 if year < 100 else 0
            # A first number above 12 can only be the day, whatever the country says.
            if first > 12 or (day_first and second <= 12):
                day, month = first, second
            else:
                month, day = first, second
        else:
            raise ValueError
        value = date(year, month, day)
    except ValueError:
        raise BadValue(f"Date {text[:40]!r} is not a date") from None
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise BadValue(f"Date {text[:40]!r} is not between {EARLIEST_DATE} and {LATEST_DATE}")
    return value


@lru_cache(maxsize=100_000)  # at most a day's seconds
def parse_time(raw: str) -> time:
    """'13:45:12', '13:45', '1:45 PM', '1:45:12 pm'."""
    text = raw.strip()
    m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?", text)
    try:
        if m is None:
            raise ValueError
        hour, minute, second = int(m[1]), int(m[2]), int(m[3] or 0)
        if m[4]:
            if not 1 <= hour <= 12:
                raise ValueError
            hour = hour % 12 + (12 if m[4].lower() == "pm" else 0)
        return time(hour, minute, second)
    except ValueError:
        raise BadValue(f"Time {text[:40]!r} is not a time") from None


# Square names zones as its dashboard shows them (Rails' names); IANA names work as they are.
SQUARE_ZONE_NAMES = {
    "pacific time (us & canada)": "America/Los_Angeles",
    "mountain time (us & canada)": "America/Denver",
    "central time (us & canada)": "America/Chicago",
    "eastern time (us & canada)": "America/New_York",
    "atlantic time (canada)": "America/Halifax",
    "newfoundland": "America/St_Johns",
    "arizona": "America/Phoenix",
    "alaska": "America/Juneau",
    "hawaii": "Pacific/Honolulu",
    "london": "Europe/London",
    "edinburgh": "Europe/London",
    "dublin": "Europe/Dublin",
    "lisbon": "Europe/Lisbon",
    "paris": "Europe/Paris",
    "madrid": "Europe/Madrid",
    "berlin": "Europe/Berlin",
    "amsterdam": "Europe/Amsterdam",
    "brussels": "Europe/Brussels",
    "rome": "Europe/Rome",
    "tokyo": "Asia/Tokyo",
    "osaka": "Asia/Tokyo",
    "sydney": "Australia/Sydney",
    "canberra": "Australia/Canberra",
    "melbourne": "Australia/Melbourne",
    "brisbane": "Australia/Brisbane",
    "adelaide": "Australia/Adelaide",
    "darwin": "Australia/Darwin",
    "perth": "Australia/Perth",
    "hobart": "Australia/Hobart",
    "auckland": "Pacific/Auckland",
    "wellington": "Pacific/Auckland",
    "utc": "UTC",
    "gmt": "UTC",
}
_OFFSET = re.compile(r"^(?:utc|gmt)?\s*([+-])(\d{1,2}):?(\d{2})?$")


@lru_cache(maxsize=256)
def zone_named(name: str) -> ZoneInfo | timezone | None:
    """The zone a cell names ('Pacific Time (US & Canada)', 'Europe/London', 'GMT-05:00',
    '(GMT-05:00) Eastern Time (US & Canada)'), or None if we do not know it."""
    text = " ".join(name.split())
    key = text.casefold()
    prefixed = re.match(r"^\((?:gmt|utc)([+-]\d{1,2}:\d{2})\)\s*(.*)$", key)
    if prefixed:  # the offset in brackets is the winter one: the name tells the rules
        key = prefixed[2] or prefixed[1]
    if key in SQUARE_ZONE_NAMES:
        return ZoneInfo(SQUARE_ZONE_NAMES[key])
    if m := _OFFSET.match(key):
        offset = timedelta(hours=int(m[2]), minutes=int(m[3] or 0))
        if offset > timedelta(hours=14):
            return None
        return timezone(-offset if m[1] == "-" else offset)
    if "/" in text and ".." not in text:
        try:
            return ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError):
            return None
    return None


def aware(local: LocalTime, *, default_zone: str) -> datetime:
    """The wall-clock time in the zone the row named, else the default (the location's)."""
    zone = zone_named(local.zone) if local.zone else ZoneInfo(default_zone)
    if zone is None:
        raise BadValue(f"Time zone {local.zone[:60]!r} is not one we know")
    return local.at.replace(tzinfo=zone)


# --- rows ------------------------------------------------------------------------------------


def _when(cells: dict[str, str], *, day_first: bool) -> LocalTime:
    if not cells.get("date"):
        raise BadValue("Date is blank")
    if not cells.get("time"):
        raise BadValue("Time is blank")
    day = parse_date(cells["date"], day_first=day_first)
    return LocalTime(datetime.combine(day, parse_time(cells["time"])), cells.get("time_zone", ""))


def _transaction_id(cells: dict[str, str]) -> str:
    value = cells.get("transaction_id", "")
    if not value:
        raise BadValue("Transaction ID is blank")
    # isprintable() refuses control and format characters (bidi overrides among them).
    if len(value) > MAX_TRANSACTION_ID or not value.isprintable():
        raise BadValue(f"Transaction ID {value[:40]!r} is not one Square writes")
    return value


def _customer_id(cells: dict[str, str]) -> str:
    value = cells.get("customer_id", "")
    if len(value) > 64 or not value.isprintable():
        raise BadValue(f"Customer ID {value[:40]!r} is not one Square writes")
    return value


_name_problem = lru_cache(maxsize=8192)(name_problem)  # a menu's names repeat


COMPLETED = frozenset({"", "complete", "completed"})


def transaction_from(
    line: int, cells: dict[str, str], *, day_first: bool
) -> TransactionRow | Skipped | Rejection:
    """One row of the transactions export. A payment is a visit; a refund, a possible bad
    experience. Pending, failed or cancelled payments and walk-ins are skipped."""
    try:
        status = cells.get("status", "").casefold()
        if status not in COMPLETED:
            return Skipped(line, "not_completed")
        transaction_id = _transaction_id(cells)
        customer_id = _customer_id(cells)
        when = _when(cells, day_first=day_first)
        amount, amount_text = Decimal(0), ""
        for column, label in (
            ("total_collected", "Total Collected"),
            ("net_sales", "Net Sales"),
            ("gross_sales", "Gross Sales"),
        ):
            raw = cells.get(column, "")
            try:
                value = parse_money(raw)
            except BadValue as exc:
                raise BadValue(f"{label} {exc}") from None
            if value is not None:
                amount, amount_text = value, raw.strip().replace("-", "").strip("()")
                break
        event = cells.get("event_type", "").casefold()
        if event not in ("", "payment", "refund"):
            return Skipped(line, "not_completed")  # e.g. a payout or an adjustment
        is_refund = event == "refund" or (not event and amount < 0)
        if not is_refund and amount < 0:
            raise BadValue(f"A payment of {cells.get('total_collected', '')[:20]!r}")
        reason = cells.get("refund_reason", "")[:MAX_REASON]
        if is_refund and free_text_problem(reason):
            raise BadValue(f"Refund Reason holds {free_text_problem(reason)}")
        if not customer_id:
            return Skipped(line, "no_customer")
        return TransactionRow(
            line=line,
            is_refund=is_refund,
            transaction_id=transaction_id,
            when=when,
            amount=abs(amount),
            amount_text=amount_text,
            customer_id=customer_id,
            location=cells.get("location", ""),
            reason=reason if is_refund else "",
        )
    except BadValue as exc:
        return Rejection(line, str(exc))


def item_from(
    line: int, cells: dict[str, str], *, day_first: bool
) -> ItemLine | Skipped | Rejection:
    """One line of the item-details export: what was ordered, for the visit's episode. A
    refunded line is skipped (the transactions export carries the refund)."""
    try:
        transaction_id = _transaction_id(cells)
        customer_id = _customer_id(cells)
        when = _when(cells, day_first=day_first)
        name = cells.get("item", "")
        point = cells.get("price_point", "")
        if point and point.casefold() != "regular" and point.casefold() not in name.casefold():
            name = f"{name} ({point})"
        if not name:
            raise BadValue("Item is blank")
        name = name[:MAX_ITEM_NAME]
        if problem := _name_problem(name):
            raise BadValue(f"Item holds {problem}")
        try:
            gross = parse_money(cells.get("gross_sales", "")) or Decimal(0)
        except BadValue as exc:
            raise BadValue(f"Gross Sales {exc}") from None
        qty_text = cells.get("qty", "") or "1"
        try:
            qty = Decimal(qty_text.replace(",", ""))
        except InvalidOperation:
            raise BadValue(f"Qty {qty_text[:20]!r} is not a number") from None
        # "NaN", "Infinity" and "1e10" are Decimals too: refused here, alone, rather than
        # failing a comparison or the quantity column and with it the whole file.
        if not qty.is_finite() or abs(qty) > MAX_QUANTITY:
            raise BadValue(f"Qty {qty_text[:20]!r} is not a quantity")
        if cells.get("event_type", "").casefold() == "refund" or qty < 0 or gross < 0:
            return Skipped(line, "refund_line")
        if not customer_id:
            return Skipped(line, "no_customer")
        # A whole quantity keeps the unit price; a weighed one (0.35 kg) is one line at its
        # total, so the spend (price × quantity) is what was paid either way.
        if qty == qty.to_integral_value() and qty > 0:
            quantity, price = int(qty), (gross / qty).quantize(CENT)
        else:
            quantity, price = 1, gross
        return ItemLine(
            line=line,
            transaction_id=transaction_id,
            when=when,
            name=name,
            quantity=quantity,
            price=price,
            customer_id=customer_id,
            location=cells.get("location", ""),
        )
    except BadValue as exc:
        return Rejection(line, str(exc))


def day_first_in(country: str) -> bool:
    """Whether a slashed date reads day first where the organization is (03/04 is 3 April in
    Britain, 4 March in the United States)."""
    return country.upper() not in {"US", "CA", "PH", "FM", "MH", "PW"}

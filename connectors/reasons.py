"""The reason map, pure: which touchpoint a comp, void, remake or refund reason is about, and
how bad it was. No ORM here, so it is tested without a database."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from accounts.errors import InvalidInput
from cxcore.text_rules import storable_problem
from cxcore.vocabulary import Touchpoint

# An item that never reached the customer is worse than one that came wrong or cold.
NEVER_CAME_EXPERIENCE = -2
BAD_EXPERIENCE = -1
MAX_ENTRIES = 50
MAX_PHRASE = 60


@dataclass(frozen=True)
class ReasonEntry:
    phrase: str
    touchpoint: str
    never_came: bool = False


@dataclass(frozen=True)
class Mapped:
    touchpoint: str
    experience: int
    phrase: str  # the entry that matched, "" when none did


DEFAULT_REASON_MAP: tuple[ReasonEntry, ...] = (
    ReasonEntry("forgotten", Touchpoint.ORDER_ACCURACY, never_came=True),
    ReasonEntry("never rung in", Touchpoint.ORDER_ACCURACY, never_came=True),
    ReasonEntry("not made", Touchpoint.ORDER_ACCURACY, never_came=True),
    ReasonEntry("wrong item", Touchpoint.ORDER_ACCURACY),
    ReasonEntry("cold", Touchpoint.FOOD_AND_DRINK),
    ReasonEntry("quality", Touchpoint.FOOD_AND_DRINK),
    ReasonEntry("remade", Touchpoint.FOOD_AND_DRINK),
    ReasonEntry("long wait", Touchpoint.WAIT),
)


def _words(text: str) -> str:
    """Lower-case words, punctuation as spaces: "Remade: wrong milk" reads "remade wrong milk"."""
    return " ".join(
        "".join(ch if ch.isalnum() or ch == "'" else " " for ch in text.casefold()).split()
    )


def map_reason(reason: str, entries: Sequence[ReasonEntry]) -> Mapped:
    """The entry whose phrase the reason contains (the longest, so "not made" beats "made"),
    else "other" at -1: an unknown reason is still a bad experience, on no known touchpoint."""
    text = f" {_words(reason)} "
    found = [e for e in entries if e.phrase and f" {_words(e.phrase)} " in text]
    if not found:
        return Mapped(Touchpoint.OTHER, BAD_EXPERIENCE, "")
    best = max(found, key=lambda e: len(e.phrase))
    experience = NEVER_CAME_EXPERIENCE if best.never_came else BAD_EXPERIENCE
    return Mapped(best.touchpoint, experience, best.phrase)


def entries_from_json(value: Iterable[dict]) -> list[ReasonEntry]:
    """Stored entries back as values (the stored JSON was validated on the way in)."""
    return [
        ReasonEntry(str(e["phrase"]), str(e["touchpoint"]), bool(e.get("never_came", False)))
        for e in value
    ]


def entries_to_json(entries: Iterable[ReasonEntry]) -> list[dict]:
    return [asdict(e) for e in entries]


def validate_entries(raw: object, *, field: str = "entries") -> list[ReasonEntry]:
    """Parse an owner's map as the schema says it (connectors.api.serializers); the first bad
    entry is named (`entries[2].touchpoint`). The same words twice: the later entry wins; a
    phrase of punctuation alone is left out."""
    if not isinstance(raw, list):
        raise InvalidInput("Give a list of {phrase, touchpoint, never_came}.", field=field)
    if len(raw) > MAX_ENTRIES:
        raise InvalidInput(f"At most {MAX_ENTRIES} entries.", field=field, code="too_many")
    entries: dict[str, ReasonEntry] = {}
    for index, item in enumerate(raw):
        where = f"{field}[{index}]"
        if not isinstance(item, dict):
            raise InvalidInput("Give an object.", field=where)
        phrase = item.get("phrase")
        if not isinstance(phrase, str) or not phrase or storable_problem(phrase):
            raise InvalidInput("Give the words to look for.", field=f"{where}.phrase")
        if len(phrase) > MAX_PHRASE:
            raise InvalidInput(
                f"At most {MAX_PHRASE} characters.", field=f"{where}.phrase", code="too_long"
            )
        words = _words(phrase)
        touchpoint = item.get("touchpoint")
        if touchpoint not in Touchpoint.values:
            raise InvalidInput(
                f"One of: {', '.join(Touchpoint.values)}.",
                field=f"{where}.touchpoint",
                code="unknown",
            )
        never_came = item.get("never_came", False)
        if not isinstance(never_came, bool):
            raise InvalidInput("true or false.", field=f"{where}.never_came")
        if not any(ch.isalnum() for ch in words):
            continue  # no letter or digit: it could never match a reason, so it is left out
        entries.pop(words, None)  # the later entry wins, in its own place
        entries[words] = ReasonEntry(words, str(touchpoint), never_came)
    return list(entries.values())


def entries_from_lines(text: str) -> list[ReasonEntry]:
    """The settings page's text form: one `phrase = touchpoint` a line, `!` after the
    touchpoint when the item never came ("never rung in = order_accuracy !")."""
    raw = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        phrase, equals, rest = line.partition("=")
        if not equals:
            raise InvalidInput(
                f"Line {number}: write “phrase = touchpoint”.", field="entries", code="invalid"
            )
        rest = rest.strip()
        never_came = rest.endswith("!")
        raw.append(
            {"phrase": phrase, "touchpoint": rest.rstrip("!").strip(), "never_came": never_came}
        )
    return validate_entries(raw)


def entries_as_lines(entries: Iterable[ReasonEntry]) -> str:
    return "\n".join(f"{e.phrase} = {e.touchpoint}{' !' if e.never_came else ''}" for e in entries)

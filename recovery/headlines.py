"""The headline: the one line staff read first on a prompt. Pure and deterministic.

"Margaret — valet kept her waiting 45 min · 6 days ago": the first name, what went wrong in a
few words (the first clause of the trigger's summary, else its touchpoints, else its kind),
and how long ago; at most 80 characters, the middle shortened to fit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cxcore.rules import NarrativeState, usual_gap
from cxcore.vocabulary import touchpoint_label
from recovery.rules import first_name_of
from recovery.vocabulary import CareReason

if TYPE_CHECKING:
    from cxcore.models import Customer, Episode
    from recovery.models import RecoveryCase

MAX_HEADLINE = 80
ELLIPSIS = "…"
# A clause ends at a sentence mark, a semicolon or colon, a comma, or a dash between words.
CLAUSE_END = re.compile(r"[.!?;:\n]|,\s|\s[—–-]\s")
# Words that stay capitalised at the start of a clause.
KEEP_CAPITAL = frozenset({"I", "I'm", "I've", "I'd", "I'll", "OK"})
KIND_WORDS = {
    "complaint": "complained",
    "incident": "incident",
    "feedback": "unhappy",
}


def first_clause(text: str) -> str:
    """The first clause of a summary, its first letter lowered unless it is a name-like word
    (all capitals, or "I")."""
    text = " ".join((text or "").split())
    clause = CLAUSE_END.split(text, maxsplit=1)[0].strip()
    if not clause:
        return ""
    word = clause.split(" ", 1)[0]
    if word not in KEEP_CAPITAL and word[1:] == word[1:].lower():
        clause = clause[0].lower() + clause[1:]
    return clause


def what_went_wrong(*, kind: str, touchpoint_labels: Sequence[str], summary: str) -> str:
    clause = first_clause(summary)
    if clause:
        return clause
    word = KIND_WORDS.get(kind, "bad experience")
    if touchpoint_labels:
        about = " and ".join(label.lower() for label in touchpoint_labels[:2])
        return f"{word} about {about}" if word == "complained" else f"{word}: {about}"
    return "complained" if word == "complained" else "had a bad experience"


def ago(then: datetime, now: datetime) -> str:
    """'just now', '3 h ago', 'yesterday', '6 days ago', '3 weeks ago', '2 months ago'."""
    elapsed = max(now - then, timedelta(0))
    if elapsed < timedelta(hours=1):
        return "just now"
    if elapsed < timedelta(days=1):
        return f"{elapsed // timedelta(hours=1)} h ago"
    days = elapsed.days
    if days < 2:
        return "yesterday"
    if days < 14:
        return f"{days} days ago"
    if days < 60:
        return f"{days // 7} weeks ago"
    return f"{days // 30} months ago"


def fit(first: str, middle: str, last: str, *, limit: int = MAX_HEADLINE) -> str:
    """'first — middle · last' in at most `limit` characters, shortening the middle (then
    the name) rather than dropping when it happened."""
    first = first or "Customer"
    tail = f" · {last}" if last else ""
    room = limit - len(first) - len(" — ") - len(tail)
    if room < 12:  # a very long name: shorten it instead
        first = first[: max(1, limit - len(" — ") - len(tail) - 12 - 1)] + ELLIPSIS
        room = limit - len(first) - len(" — ") - len(tail)
    if len(middle) > room:
        cut = middle[: room - 1].rstrip()
        # End on a word boundary when one is near.
        if " " in cut[room // 2 :]:
            cut = cut[: cut.rfind(" ")].rstrip(" ,;:")
        middle = cut + ELLIPSIS
    return f"{first} — {middle}{tail}"


def recovery_headline(
    *,
    first_name: str,
    kind: str,
    touchpoint_labels: Sequence[str],
    summary: str,
    occurred_at: datetime,
    now: datetime,
) -> str:
    what = what_went_wrong(kind=kind, touchpoint_labels=touchpoint_labels, summary=summary)
    return fit(first_name, what, ago(occurred_at, now))


def care_headline(
    *,
    first_name: str,
    usual_gap: timedelta | None,
    last_visit_at: datetime | None,
    now: datetime,
    drifting: bool = False,
) -> str:
    """A regular gone quiet: 'Priya — usually every 6 days, last here 5 weeks ago'; one who still
    comes but whose experiences slide (a drifting care case) is not overdue, so the rhythm would
    say nothing went wrong: 'Priya — recent visits going less well, last here 2 days ago'."""
    if last_visit_at is None:
        return fit(first_name, "a regular we have not seen for a while", "")
    if drifting:
        return fit(
            first_name, f"recent visits going less well, last here {ago(last_visit_at, now)}", ""
        )
    rhythm = ""
    if usual_gap is not None and usual_gap >= timedelta(days=1):
        days = round(usual_gap / timedelta(days=1))
        named = {1: "daily", 7: "weekly"}
        rhythm = f"usually {named[days]}, " if days in named else f"usually every {days} days, "
    return fit(first_name, f"{rhythm}last here {ago(last_visit_at, now)}", "")


def headline_of(
    *, case: RecoveryCase, customer: Customer, trigger: Episode | None, now: datetime
) -> str:
    """A case's headline, the one the till and the queue both show: from its newest trigger,
    or, with none (a care case), the care headline from the customer's rhythm and the case's
    care reason. `customer` is the case's, passed as the caller already holds it."""
    first_name = first_name_of(customer.name)
    if trigger is None:
        rhythm = NarrativeState(
            visit_count=customer.visit_count,
            first_visit_at=customer.first_visit_at,
            last_visit_at=customer.last_visit_at,
        )
        return care_headline(
            first_name=first_name,
            usual_gap=usual_gap(rhythm),
            last_visit_at=customer.last_visit_at,
            now=now,
            drifting=case.care_reason == CareReason.DRIFTING,
        )
    return recovery_headline(
        first_name=first_name,
        kind=trigger.kind,
        touchpoint_labels=[touchpoint_label(t.get("code", "")) for t in trigger.touchpoints],
        summary=trigger.summary,
        occurred_at=trigger.occurred_at,
        now=now,
    )

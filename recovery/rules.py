"""Pure rules of recovery: playbook matching, severity, action texts. No ORM here."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from recovery.vocabulary import Outcome, Placeholder, Severity, Standing


def severity_for(worst_experience: int | None) -> int:
    """-2 is high, -1 medium; a case without a bad experience (care) is low."""
    if worst_experience is None or worst_experience >= 0:
        return Severity.LOW
    return Severity.HIGH if worst_experience <= -2 else Severity.MEDIUM


def raised(severity: int) -> int:
    return min(severity + 1, Severity.CRITICAL)


def standing_of(
    *, visit_count: int, total_spend: Decimal, is_regular: bool, high_spend: Decimal
) -> frozenset[str]:
    """`is_regular` comes from cxcore.rules.is_regular, the one definition of a regular."""
    standing = set()
    if visit_count <= 1:
        standing.add(Standing.FIRST_TIMER)
    if is_regular:
        standing.add(Standing.REGULAR)
    if total_spend >= high_spend:
        standing.add(Standing.HIGH_SPENDER)
    return frozenset(standing)


@dataclass(frozen=True)
class CaseContext:
    """What a playbook is matched against and what its action texts can mention."""

    kind: str  # case kind: recovery | care
    episode_kinds: frozenset[str] = frozenset()
    touchpoints: frozenset[str] = frozenset()
    third_party_touchpoints: frozenset[str] = frozenset()
    worst_experience: int | None = None
    standing: frozenset[str] = frozenset()
    first_name: str = ""
    usual_order: str = ""
    happened_at: datetime | None = None
    time_zone: str = "UTC"
    location_name: str = ""


@dataclass(frozen=True)
class PlaybookSpec:
    """A playbook's match conditions and instructions, detached from the database row."""

    id: int | None
    case_kind: str
    match_touchpoints: Sequence[str] = ()
    match_third_party: bool = False
    match_max_experience: int | None = None
    match_kinds: Sequence[str] = ()
    match_standing: Sequence[str] = ()
    actions: Sequence[str] = ()
    ack_sla: timedelta = timedelta(hours=4)
    resolve_sla: timedelta = timedelta(days=2)
    show_at_visit: bool = True


def matches(playbook: PlaybookSpec, ctx: CaseContext) -> bool:
    if playbook.case_kind != ctx.kind:
        return False
    if playbook.match_touchpoints and not ctx.touchpoints & set(playbook.match_touchpoints):
        return False
    if playbook.match_third_party and not ctx.third_party_touchpoints:
        return False
    if playbook.match_max_experience is not None and (
        ctx.worst_experience is None or ctx.worst_experience > playbook.match_max_experience
    ):
        return False
    if playbook.match_kinds and not ctx.episode_kinds & set(playbook.match_kinds):
        return False
    return not (playbook.match_standing and not ctx.standing & set(playbook.match_standing))


# When no playbook matches: still a case, with plain good sense.
FALLBACK = {
    "recovery": PlaybookSpec(
        id=None,
        case_kind="recovery",
        actions=("Apologise to {first_name} by name", "Ask what went wrong and note it"),
    ),
    "care": PlaybookSpec(
        id=None,
        case_kind="care",
        actions=("Welcome {first_name} back by name and ask how they have been",),
        ack_sla=timedelta(days=2),
        resolve_sla=timedelta(days=7),
    ),
}


def first_match(playbooks: Iterable[PlaybookSpec], ctx: CaseContext) -> PlaybookSpec:
    """Playbooks in position order; the first that matches wins, else the fallback."""
    for playbook in playbooks:
        if matches(playbook, ctx):
            return playbook
    return FALLBACK[ctx.kind]


PLACEHOLDERS = frozenset(Placeholder.values)
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
MAX_SLA = timedelta(days=365)


def check_action_template(template: str) -> None:
    """Raise ValueError unless every {…} in the text is one of PLACEHOLDERS, written plainly.

    Action texts are filled by plain substitution, never str.format: a format spec such as
    {first_name:>999999999} or an attribute lookup must not reach a sweep.
    """
    for part in re.findall(r"\{[^{}]*\}?", template):
        name = PLACEHOLDER.fullmatch(part)
        if name is None or name[1] not in PLACEHOLDERS:
            allowed = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
            raise ValueError(f"Unknown placeholder {part[:40]}; use {allowed}.")


def check_sla(value: timedelta) -> None:
    if not timedelta(0) < value <= MAX_SLA:
        raise ValueError("Must be more than zero and at most 365 days.")


TOUCHPOINT_WORDS = {
    "order_accuracy": "order",
    "food_and_drink": "food and drink",
    "parking_valet": "valet",
    "wait": "wait",
}


def render_action(template: str, ctx: CaseContext) -> str:
    """Fill a suggested action's placeholders for this customer (plain substitution)."""
    when = ""
    if ctx.happened_at is not None:
        local = ctx.happened_at.astimezone(ZoneInfo(ctx.time_zone or "UTC"))
        when = f"{local:%a} {local.day} {local:%b}"
    touchpoint = next(iter(sorted(ctx.third_party_touchpoints or ctx.touchpoints)), "")
    values: dict[str, str] = {
        Placeholder.FIRST_NAME: ctx.first_name or "the customer",
        Placeholder.USUAL_ORDER: ctx.usual_order or "their usual",
        Placeholder.TOUCHPOINT: TOUCHPOINT_WORDS.get(touchpoint, touchpoint.replace("_", " ")),
        Placeholder.WHEN: when,
        Placeholder.LOCATION: ctx.location_name,
    }
    text = PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), template)
    return " ".join(text.split())[:300]


def is_quiet_hour(local_hour: int, start: int, end: int) -> bool:
    """Quiet hours may wrap midnight (22 → 7); equal bounds mean none."""
    if start == end:
        return False
    if start < end:
        return start <= local_hour < end
    return local_hour >= start or local_hour < end


def outcome_of(*, came_back: bool, next_experience: int | None, window_over: bool) -> str | None:
    """recovered / came_back_unhappy / lost, or None while it cannot be told yet."""
    if came_back:
        unhappy = next_experience is not None and next_experience < 0
        return Outcome.CAME_BACK_UNHAPPY if unhappy else Outcome.RECOVERED
    return Outcome.LOST if window_over else None


def first_name_of(name: str) -> str:
    return name.strip().split(" ")[0] if name.strip() else ""


# Created with each organization; managers edit them (DESIGN.md: sensible defaults).
DEFAULT_PLAYBOOKS: list[dict[str, Any]] = [
    {
        "name": "Partner let them down (valet, delivery)",
        "match_third_party": True,
        "actions": [
            "Apologise to {first_name} for the {touchpoint} on {when}: it is on us, not them",
            "Offer {usual_order} on the house",
            "Report it to the {touchpoint} partner",
        ],
        "ack_sla": timedelta(hours=4),
        "resolve_sla": timedelta(days=2),
    },
    {
        "name": "Order mix-up",
        "match_touchpoints": ["order_accuracy"],
        "actions": [
            "Apologise to {first_name} by name for the order mix-up on {when}",
            "Comp their usual {usual_order}",
            "Read the order back at the till",
        ],
        "ack_sla": timedelta(hours=4),
        "resolve_sla": timedelta(days=2),
    },
    {
        "name": "Long wait",
        "match_touchpoints": ["wait", "arrival", "reservation"],
        "actions": [
            "Apologise to {first_name} for the wait on {when}",
            "Offer {usual_order} on the house",
            "Serve them first if there is a queue",
        ],
    },
    {
        "name": "Food and drink",
        "match_touchpoints": ["food_and_drink"],
        "actions": [
            "Apologise to {first_name} and ask what was wrong",
            "Replace it, or offer {usual_order} on the house",
            "Tell the kitchen",
        ],
    },
    {
        "name": "Staff manner",
        "match_touchpoints": ["staff"],
        "actions": [
            "The manager apologises to {first_name} personally",
            "Offer {usual_order} on the house",
            "Talk it through with the team member involved",
        ],
        "escalate_to": "owner",
    },
    {
        "name": "Very negative: the owner calls",
        "match_max_experience": -2,
        "actions": [
            "The owner calls {first_name} today to apologise",
            "Offer {usual_order} on the house at the next visit",
        ],
        "ack_sla": timedelta(hours=1),
        "resolve_sla": timedelta(days=1),
        "escalate_to": "owner",
    },
    {
        "name": "Regular gone quiet",
        "case_kind": "care",
        "actions": [
            "Welcome {first_name} back by name and ask how they have been",
            "Offer {usual_order} on the house today",
        ],
        "ack_sla": timedelta(days=2),
        "resolve_sla": timedelta(days=7),
    },
]

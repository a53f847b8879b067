"""The till sidebar: who is this, what happened last time, what to do right now.

One read with a fixed number of queries whatever the customer's history: the customer with
identifiers, the open prompts with their actions and triggers, and the last 20 episodes.

Location limits never hide the customer in front of the till (DESIGN.md invariant 4): the
prompts are the customer's open cases wherever in the organization they were opened, and
`till_cases` is what the till (the page and the API) may act on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.timesince import timesince

from accounts.models import Location
from accounts.tenancy import Tenant
from cxcore.models import Customer, Episode, Identifier
from cxcore.vocabulary import FOLLOW_UP_KINDS, EpisodeKind
from recovery import lifecycle
from recovery.headlines import ago, headline_of
from recovery.models import CaseAction, CaseStatus, RecoveryCase, RecoveryCaseQuerySet
from recovery.selectors import cases_at_locations

EPISODES_SHOWN = 20


def till_cases(tenant: Tenant) -> QuerySet[RecoveryCase]:
    """The cases the till may act on (acknowledge, not now, resolve), on the page and in the
    API alike: those the tenant may browse (`cases_for`), and every case of its organization
    the sidebar prompts, wherever it was opened, because the customer in front of the till
    is never hidden by a location limit (DESIGN.md invariant 4).

    A prompt closed meanwhile stays in scope, so a second till's late tap is told "already
    closed" (409) rather than "no such case": the lifecycle acts only on open cases. Another
    organization's cases are never in it (404), nor a held-out care case: nobody is meant to
    work it."""
    return till_scope(RecoveryCase.objects.for_tenant(tenant), tenant)


def till_scope(cases: RecoveryCaseQuerySet, tenant: Tenant) -> RecoveryCaseQuerySet:
    """`cases` (already the tenant's organization's) narrowed to what the till may act on."""
    return (cases_at_locations(cases, tenant) | cases.filter(show_at_visit=True)).worked()


@dataclass
class Prompt:
    case: RecoveryCase
    trigger: Episode | None
    headline: str
    what_happened: str
    happened_local: str
    where: str
    ago: str
    # A second bad experience after a recovery: the till says so, and offers what to do now.
    second_time: bool = False
    to_do: list[CaseAction] = field(default_factory=list)
    done: list[CaseAction] = field(default_factory=list)
    # A care case's one line on why it is here now; "" for a recovery case.
    why_now: str = ""


@dataclass(frozen=True)
class LastTime:
    """What the card says happened last: the customer's last experience, or the recovery (or
    outreach) logged after it, so a put-right customer is not greeted as still wronged."""

    follow_up_kind: str  # "recovery" or "outreach" when a follow-up came last, else ""
    experience: int | None
    text: str
    ago: str

    @property
    def label(self) -> str:
        labels: dict[str, str] = {
            EpisodeKind.RECOVERY: "put right",
            EpisodeKind.OUTREACH: "followed up",
        }
        return labels.get(self.follow_up_kind, "")


def last_time(customer: Customer, episodes: Sequence[Episode], now: datetime) -> LastTime | None:
    """The last thing that happened that staff should know: a follow-up no later experience
    has overtaken, else the last experience (with its episode's text when it is among the
    `episodes` shown)."""
    follow_up_at = customer.last_follow_up_at
    experience_at = customer.last_experience_at
    if follow_up_at is not None and (experience_at is None or follow_up_at >= experience_at):
        episode = next((e for e in episodes if e.kind in FOLLOW_UP_KINDS), None)
        return LastTime(
            follow_up_kind=episode.kind if episode else EpisodeKind.RECOVERY,
            experience=None,
            text=episode.summary if episode else "",
            ago=ago(follow_up_at, now),
        )
    if customer.last_experience is None or experience_at is None:
        return None
    episode = next((e for e in episodes if e.pk == customer.last_experience_episode_id), None)
    return LastTime(
        follow_up_kind="",
        experience=customer.last_experience,
        text=episode.summary if episode else "",
        ago=ago(experience_at, now),
    )


# What an order line's price is shown in, by the organization's country; elsewhere, the
# amount alone (a price without a symbol is still a price).
EURO_COUNTRIES = ("AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE", "IT",
                  "LT", "LU", "LV", "MT", "NL", "PT", "SI", "SK")  # fmt: skip
CURRENCY_SYMBOLS = {
    "GB": "£", "US": "$", "CA": "$", "AU": "$", "NZ": "$",
    **dict.fromkeys(EURO_COUNTRIES, "€"),
}  # fmt: skip


def order_line(item: dict[str, Any], *, currency: str) -> str:
    """ "Almond-milk latte ×1 £3.60": the name, the quantity, the line's price (unit price
    times quantity, as the spend is counted) when it has one. A nameless line with a price is
    a payment's spend (the Square connector and the history import write one): "Spent £3.60"."""
    name = str(item.get("name") or "").strip()
    try:
        quantity = int(item.get("quantity") or 1)
    except (TypeError, ValueError):
        quantity = 1
    amount = ""
    price = item.get("price")
    if price not in (None, ""):
        with contextlib.suppress(InvalidOperation):  # a stored price is text; odd text shows none
            amount = f"{currency}{Decimal(str(price)) * quantity:.2f}"
    if not name:
        return f"Spent {amount}" if amount else "Item ×1"
    return f"{name} ×{quantity} {amount}" if amount else f"{name} ×{quantity}"


@dataclass(frozen=True)
class Entry:
    """One episode on the till's timeline, with its order lines spelled out."""

    episode: Episode
    order_lines: list[str]


@dataclass
class Sidebar:
    customer: Customer | None
    prompts: list[Prompt] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    time_zone: str = "UTC"
    last_time: LastTime | None = None
    currency: str = ""

    @property
    def timeline(self) -> list[Entry]:
        return [
            Entry(e, [order_line(item, currency=self.currency) for item in e.items or []])
            for e in self.episodes
        ]


def customer_sidebar(
    *,
    tenant: Tenant,
    customer_id: int | None,
    location: Location | None,
    now: datetime | None = None,
) -> Sidebar:
    """The sidebar of the tenant's customer `customer_id`; `customer` is None when there is
    no such customer (unknown, or another organization's)."""
    tz = location.time_zone if location else tenant.organization.time_zone
    customer = None
    if customer_id is not None:
        customer = (
            Customer.objects.for_tenant(tenant)
            .filter(pk=customer_id)
            .prefetch_related(Prefetch("identifiers", queryset=Identifier.objects.order_by("kind")))
            .first()
        )
    if customer is None:
        return Sidebar(customer=None, time_zone=tz)
    now = now or timezone.now()
    # The case marks on the row say whether there is anything to prompt: most customers at a
    # till have no open case, and their sidebar skips the three case queries.
    cases: list[RecoveryCase] = []
    if customer.recovery_case_open or customer.care_case_open:
        cases = list(
            # The organization's, not the tenant's locations': see the module docstring.
            till_cases(tenant)
            # Held-out care cases are never prompted (show_at_visit is off on them too).
            .filter(customer=customer, status=CaseStatus.OPEN, show_at_visit=True, held_out=False)
            .select_related("location")
            .prefetch_related(
                "actions",
                Prefetch(
                    "triggers",
                    queryset=Episode.objects.select_related("location").order_by(
                        "-occurred_at", "-id"
                    ),
                ),
            )
            .order_by("-severity", "opened_at", "id")
        )
    episodes = list(
        # Neither the till nor the API shows who logged an episode: no author joins.
        Episode.objects.filter(customer=customer)
        .select_related("location")
        .order_by("-occurred_at", "-id")[:EPISODES_SHOWN]
    )
    return Sidebar(
        customer=customer,
        prompts=[_prompt(case, customer, tz, now) for case in cases],
        episodes=episodes,
        time_zone=tz,
        last_time=last_time(customer, episodes, now),
        currency=CURRENCY_SYMBOLS.get(tenant.organization.country, ""),
    )


def _prompt(case: RecoveryCase, customer: Customer, tz: str, now: datetime) -> Prompt:
    triggers = list(case.triggers.all())  # newest first: a reopened case shows the new one
    trigger = triggers[0] if triggers else None
    actions = list(case.actions.all())
    to_do = lifecycle.current_actions(case, actions)
    done = [a for a in actions if a.taken_at is not None]
    headline = headline_of(case=case, customer=customer, trigger=trigger, now=now)
    second_time = case.reopened_at is not None
    if trigger is None:  # a care case: nothing went wrong, they stopped coming
        return Prompt(
            case=case,
            trigger=None,
            headline=headline,
            what_happened=case.why_now or "A regular we have not seen for a while.",
            happened_local="",
            where=case.location.name if case.location else "",
            ago="",
            to_do=to_do,
            done=done,
            why_now=case.why_now,
        )
    zone = ZoneInfo(trigger.location.time_zone if trigger.location else tz)
    local = trigger.occurred_at.astimezone(zone)
    where = trigger.location.name if trigger.location else ""
    kind = trigger.get_kind_display()
    summary = f": {trigger.summary}" if trigger.summary else ""
    place = f" at {where}" if where else ""
    return Prompt(
        case=case,
        trigger=trigger,
        headline=headline,
        what_happened=f"{kind}{place} on {local:%a} {local.day} {local:%b}{summary}",
        happened_local=f"{local:%a} {local.day} {local:%b} {local:%Y}, {local:%H:%M}",
        where=where,
        ago=f"{timesince(trigger.occurred_at, now).split(',')[0]} ago",
        second_time=second_time,
        to_do=to_do,
        done=done,
    )

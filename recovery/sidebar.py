"""The till sidebar: who is this, what happened last time, what to do right now.

One read with a fixed number of queries whatever the customer's history: the customer with
identifiers, the open prompts with their actions and triggers, and the last 20 episodes.

Location limits never hide the customer in front of the till (DESIGN.md invariant 4): the
prompts are the customer's open cases wherever in the organization they were opened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db.models import Prefetch
from django.utils import timezone
from django.utils.timesince import timesince

from accounts.models import Location
from accounts.tenancy import Tenant
from cxcore.models import Customer, Episode, Identifier
from cxcore.rules import NarrativeState, usual_gap
from cxcore.vocabulary import touchpoint_label
from recovery import lifecycle
from recovery.headlines import care_headline, recovery_headline
from recovery.models import CaseAction, CaseStatus, RecoveryCase
from recovery.rules import first_name_of

EPISODES_SHOWN = 20


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


@dataclass
class Sidebar:
    customer: Customer | None
    prompts: list[Prompt] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    time_zone: str = "UTC"


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
            RecoveryCase.objects.for_tenant(tenant)
            .filter(customer=customer, status=CaseStatus.OPEN, show_at_visit=True)
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
    )


def _prompt(case: RecoveryCase, customer: Customer, tz: str, now: datetime) -> Prompt:
    triggers = list(case.triggers.all())  # newest first: a reopened case shows the new one
    trigger = triggers[0] if triggers else None
    actions = list(case.actions.all())
    to_do = lifecycle.current_actions(case, actions)
    done = [a for a in actions if a.taken_at is not None]
    first_name = first_name_of(customer.name)
    second_time = case.reopened_at is not None
    if trigger is None:  # a care case: nothing went wrong, they stopped coming
        return Prompt(
            case=case,
            trigger=None,
            headline=care_headline(
                first_name=first_name,
                usual_gap=usual_gap(NarrativeState.of(customer)),
                last_visit_at=customer.last_visit_at,
                now=now,
            ),
            what_happened="A regular we have not seen for a while.",
            happened_local="",
            where=case.location.name if case.location else "",
            ago="",
            to_do=to_do,
            done=done,
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
        headline=recovery_headline(
            first_name=first_name,
            kind=trigger.kind,
            touchpoint_labels=[touchpoint_label(t.get("code", "")) for t in trigger.touchpoints],
            summary=trigger.summary,
            occurred_at=trigger.occurred_at,
            now=now,
        ),
        what_happened=f"{kind}{place} on {local:%a} {local.day} {local:%b}{summary}",
        happened_local=f"{local:%a} {local.day} {local:%b} {local:%Y}, {local:%H:%M}",
        where=where,
        ago=f"{timesince(trigger.occurred_at, now).split(',')[0]} ago",
        second_time=second_time,
        to_do=to_do,
        done=done,
    )


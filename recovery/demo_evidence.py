"""Demo history for the evidence, so "Does care work?" and "What works" show a result on a
first run rather than "not enough data yet".

Lived through the real paths, never written as finished rows: episodes go in through
`record_episodes_bulk`, the care and recovery sweeps open the cases and make their seeded
draws (held out or worked; which variant), the sweeps resolve them when the follow-ups come,
and `measure_outcomes` measures them. The seeding only decides what the customers do, and
that depends on the draw the way an owner would hope: worked regulars come back more often
than held-out ones, and an apology with a comp brings more people back than an apology
alone. Cohorts are added until each group holds `TARGET` cases, whatever the draws gave.

Call it after the demo's day-by-day replay (the sweeps it runs at past times then find
nothing else due): `seed_evidence(organization=org, location=main, now=now, rng=rng)`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Q

from accounts.errors import DomainError
from accounts.models import Location, Organization
from cxcore.models import Customer, EpisodeKind, Source
from cxcore.services import EpisodeInput, record_episodes_bulk
from recovery.evidence import MIN_PER_ARM
from recovery.models import CaseKind, Playbook, PlaybookVariant, RecoveryCase
from recovery.outcomes import measure_outcomes
from recovery.sweep import sweep_care, sweep_recovery

# Cases per group the seeding aims for: the minimum with room to spare.
TARGET = MIN_PER_ARM + 10
COHORT = 40  # customers added per round
MAX_ROUNDS = 25  # a holdout share of 1% would need hundreds of rounds: stop instead
# Came back within the window: worked vs held out (the effect the figures should find).
CARE_RETURN = {False: 0.62, True: 0.35}
EXPERIMENT_PLAYBOOK = "Order mix-up"
VARIANTS = [
    # (name, actions, share who come back, share of those who spend their usual again)
    (
        "Apology by name",
        [
            "Apologise to {first_name} by name for the order mix-up on {when}",
            "Read the order back at the till",
        ],
        0.58,
        0.45,
    ),
    (
        "Apology + comp their usual",
        [
            "Apologise to {first_name} by name for the order mix-up on {when}",
            "Comp their usual {usual_order}",
            "Read the order back at the till",
        ],
        0.8,
        0.7,
    ),
]
PRICES = ["3.40", "3.60", "6.80", "8.50", "11.90"]
FIRST = ["Ada", "Bea", "Cal", "Dot", "Ezra", "Fern", "Gil", "Hal", "Ines", "Jude", "Kit", "Lou"]
LAST = ["Hart", "Moss", "Vale", "Finch", "Reid", "Lowe", "Marsh", "Quill", "Shaw", "Tate"]
DAY = timedelta(days=1)


@dataclass
class EvidenceSeeded:
    worked: int = 0
    held_out: int = 0
    variant_cases: int = 0
    rounds: int = 0


def seed_evidence(
    *, organization: Organization, location: Location, now: datetime, rng: random.Random
) -> EvidenceSeeded:
    result = EvidenceSeeded()
    _seed_care(organization, location, now, rng, result)
    _seed_variants(organization, location, now, rng, result)
    measure_outcomes(now=now)
    return result


def _record(organization: Organization, items: list[EpisodeInput], *, now: datetime) -> None:
    for start in range(0, len(items), 500):
        results = record_episodes_bulk(
            organization=organization, items=items[start : start + 500], now=now
        )
        failed = [r.error for r in results if r.error is not None]
        if failed:
            raise DomainError(f"Demo episode refused: {failed[0]}")


def _people(organization: Organization, count: int, rng: random.Random) -> list[Customer]:
    return Customer.objects.bulk_create(
        [
            Customer(organization=organization, name=f"{rng.choice(FIRST)} {rng.choice(LAST)}")
            for _ in range(count)
        ]
    )


def _stayed(
    returned: dict[int, datetime], location: Location, now: datetime, rng: random.Random
) -> list[EpisodeInput]:
    """Those who came back kept coming: a visit halfway to now and one in the last days, so
    the demo's queue is not flooded with them lapsing again (their rhythm, the mean gap,
    puts their next lapse weeks away)."""
    visits = []
    for customer_id, at in returned.items():
        person = Customer(pk=customer_id)
        for when in (at + (now - at) / 2, now - rng.uniform(1, 4) * DAY):
            if when > at:
                visits.append(_order(person, location, when, rng.choice(PRICES)))
    return visits


def _order(person: Customer, location: Location, at: datetime, price: str, **extra) -> EpisodeInput:
    return EpisodeInput(
        kind=EpisodeKind.ORDER,
        customer_id=person.pk,
        location=location,
        occurred_at=at,
        source=Source.POS,
        items=[{"name": "Flat white", "quantity": 1, "price": price}],
        **extra,
    )


def _care_counts(organization: Organization, people: set[int]) -> tuple[int, int]:
    figures = (
        RecoveryCase.objects.for_org(organization)
        .filter(kind=CaseKind.CARE, customer_id__in=people, draw_seed__isnull=False)
        .aggregate(
            worked=Count("id", filter=Q(held_out=False)), held=Count("id", filter=Q(held_out=True))
        )
    )
    return figures["worked"], figures["held"]


def _seed_care(
    organization: Organization,
    location: Location,
    now: datetime,
    rng: random.Random,
    result: EvidenceSeeded,
) -> None:
    """Weekly regulars who stop (their care case opens a hundred days ago); the worked ones
    get a call; some of each come back within the window."""
    if organization.care_holdout_share == 0:
        return  # nothing would ever be held out
    lapse = now - timedelta(days=100)  # their last visit
    # Past three times their weekly rhythm (the default care_gap_factor), give or take a day.
    opens = lapse + 22 * DAY
    ours: set[int] = set()
    for _ in range(MAX_ROUNDS):
        worked, held = _care_counts(organization, ours)
        if worked >= TARGET and held >= TARGET:
            break
        people = _people(organization, COHORT, rng)
        ours |= {p.pk for p in people}
        history = [
            _order(
                person,
                location,
                lapse - weeks * 7 * DAY + rng.uniform(-0.2, 0.2) * DAY,
                rng.choice(PRICES),
            )
            for person in people
            for weeks in range(8, -1, -1)
        ]
        _record(organization, history, now=lapse + DAY)
        sweep_care(now=opens)
        cases = RecoveryCase.objects.for_org(organization).filter(
            kind=CaseKind.CARE, customer_id__in=[p.pk for p in people], status="open"
        )
        later: list[EpisodeInput] = []
        returned: dict[int, datetime] = {}
        for case in cases.only("id", "customer_id", "held_out", "opened_at"):
            person = Customer(pk=case.customer_id)
            if not case.held_out:  # the queue shows it; someone calls
                later.append(
                    EpisodeInput(
                        kind=EpisodeKind.OUTREACH,
                        customer_id=case.customer_id,
                        location=location,
                        occurred_at=case.opened_at + rng.uniform(0.2, 2) * DAY,
                        source=Source.STAFF,
                        summary="Called to say we missed them; a coffee on us next time.",
                    )
                )
            if rng.random() < CARE_RETURN[case.held_out]:
                back = case.opened_at + rng.uniform(2.5, 28) * DAY
                later.append(_order(person, location, back, rng.choice(PRICES), experience=1))
                returned[case.customer_id] = back
        # With the visits after, before the sweep: a regular back early would otherwise be
        # lapsing again by the time it runs.
        _record(organization, later + _stayed(returned, location, now, rng), now=now)
        sweep_care(now=opens + 30 * DAY)
        result.rounds += 1
    result.worked, result.held_out = _care_counts(organization, ours)


@transaction.atomic
def _experiment(organization: Organization, now: datetime) -> Playbook | None:
    """The order mix-up playbook with two variants (unless it has variants already)."""
    playbook = (
        Playbook.objects.for_org(organization)
        .filter(name=EXPERIMENT_PLAYBOOK, is_active=True)
        .select_for_update()
        .first()
    )
    if playbook is None:
        return None
    if not playbook.variants.exists():
        PlaybookVariant.objects.bulk_create(
            [
                PlaybookVariant(
                    organization=organization,
                    playbook=playbook,
                    name=name,
                    actions=actions,
                    position=position,
                    created_at=now,
                )
                for position, (name, actions, _, _) in enumerate(VARIANTS)
            ]
        )
    return playbook


def _seed_variants(
    organization: Organization,
    location: Location,
    now: datetime,
    rng: random.Random,
    result: EvidenceSeeded,
) -> None:
    """Customers with a spend history whose order goes wrong eighty days ago; the playbook
    draws a variant for each case; a follow-up resolves it; some come back, spending their
    usual or less."""
    complaint_at = now - timedelta(days=80)
    playbook = _experiment(organization, complaint_at - 60 * DAY)
    if playbook is None:
        return
    odds = {name: (back, spend) for name, _, back, spend in VARIANTS}
    ours: set[int] = set()
    for _ in range(MAX_ROUNDS):
        counts = dict(
            RecoveryCase.objects.for_org(organization)
            .filter(customer_id__in=ours, variant__isnull=False)
            .values_list("variant_id")
            .annotate(n=Count("id"))
            .values_list("variant_id", "n")
        )
        if len(counts) >= len(VARIANTS) and min(counts.values()) >= TARGET:
            break
        people = _people(organization, COHORT, rng)
        ours |= {p.pk for p in people}
        usual = {p.pk: rng.choice(PRICES) for p in people}
        history: list[EpisodeInput] = []
        for person in people:
            for days in (50, 36, 22, 9):
                at = complaint_at - days * DAY + rng.uniform(-1, 1) * DAY
                history.append(_order(person, location, at, usual[person.pk]))
            history.append(
                EpisodeInput(
                    kind=EpisodeKind.COMPLAINT,
                    customer_id=person.pk,
                    location=location,
                    occurred_at=complaint_at + rng.uniform(0, 0.3) * DAY,
                    source=Source.FEEDBACK_FORM,
                    summary="My order came out wrong and nobody noticed.",
                    touchpoints=[{"code": "order_accuracy", "third_party": False}],
                    experience=-1,
                )
            )
        history.sort(key=lambda item: item.occurred_at or now)
        _record(organization, history, now=complaint_at + DAY)
        sweep_recovery(now=complaint_at + DAY)
        cases = (
            RecoveryCase.objects.for_org(organization)
            .filter(customer_id__in=[p.pk for p in people], variant__isnull=False)
            .select_related("variant")
            .only("id", "customer_id", "opened_at", "variant__name")
        )
        later: list[EpisodeInput] = []
        returned: dict[int, datetime] = {}
        for case in cases:
            assert case.variant is not None
            person = Customer(pk=case.customer_id)
            apologised = case.opened_at + rng.uniform(0.1, 1.5) * DAY
            later.append(
                EpisodeInput(
                    kind=EpisodeKind.RECOVERY,
                    customer_id=case.customer_id,
                    location=location,
                    occurred_at=apologised,
                    source=Source.STAFF,
                    summary="Apologised by name for the mix-up.",
                )
            )
            back, spends = odds.get(case.variant.name, (0.5, 0.5))
            if rng.random() < back:
                price = usual[case.customer_id]
                lower = PRICES[max(PRICES.index(price) - 1, 0)]  # the cheapest: the same
                spent = price if rng.random() < spends else lower
                at = apologised + rng.uniform(2, 25) * DAY
                later.append(_order(person, location, at, spent, experience=rng.choice([0, 1, 2])))
                returned[case.customer_id] = at
        _record(organization, later + _stayed(returned, location, now, rng), now=now)
        sweep_recovery(now=complaint_at + 30 * DAY)
        result.rounds += 1
    result.variant_cases = (
        RecoveryCase.objects.for_org(organization)
        .filter(customer_id__in=ours, variant__isnull=False)
        .count()
    )

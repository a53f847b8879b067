"""Demo partners: a valet company at the harbour and a delivery app, with three months of
tagged visits, failures and answers, so the scorecard shows a result for the last full month.

`seed_partners(org, now)` runs after the demo's own history (recovery's seed_demo): it adds
its episodes through the narrative's services, runs the sweep at each failure's own time
(a case opens beside it, as it would have), opens the partner's incident, and records what
the partner answered. It does nothing for an organization that has partners already.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from accounts.models import Organization
from cxcore.models import Customer
from cxcore.services import EpisodeInput, record_episode, record_episodes_bulk
from partners.models import Partner
from partners.services import (
    answer_incident,
    create_partner,
    dispute_incident,
    fix_incident,
    open_incidents_for,
)
from recovery.models import RecoveryCase
from recovery.sweep import sweep_recovery

MONTHS = 3
VALET = [{"code": "parking_valet", "third_party": True}]
DELIVERY = [{"code": "delivery", "third_party": True}]
VALET_STORIES = [
    "Valet kept us waiting 40 minutes for the car",
    "Car came back with a scratch on the door",
    "Valet lost the ticket; we waited half an hour",
    "Nobody at the valet stand when we arrived",
]
DELIVERY_STORIES = [
    "Order arrived cold, an hour late",
    "Driver left the bag at the wrong door",
    "Half the order missing from the delivery",
]
ANSWERS = [
    "Short-staffed that night; two more drivers on weekends from now on.",
    "Apologies: the driver has been retrained on the ticket system.",
    "We are paying for the repair; the claim is in.",
]


def seed_partners(org: Organization, now: datetime, *, seed: int = 16) -> list[Partner]:
    """The valet company and the delivery app, with their last three months."""
    if Partner.objects.for_org(org).exists():
        return []
    rng = random.Random(seed)
    locations = list(org.locations.order_by("pk"))
    harbour = locations[-1]
    people = list(Customer.objects.for_org(org).order_by("pk").values_list("pk", flat=True))
    if not people:
        return []
    start = now - timedelta(days=30 * MONTHS + 5)
    valet = create_partner(
        organization=org,
        fields={
            "name": "Harbour Valet Co",
            "contact_name": "Priya Shah",
            "contact_email": "ops@harbourvalet.example",
            "touchpoints": ["parking_valet"],
        },
        now=start,
    )
    courier = create_partner(
        organization=org,
        fields={
            "name": "QuickBite Delivery",
            "contact_name": "Partner support",
            "contact_email": "partners@quickbite.example",
            "touchpoints": ["delivery"],
        },
        now=start,
    )
    # The tagged visits and orders: the scorecard's "involved visits".
    items = []
    for day in range(30 * MONTHS):
        when = start + timedelta(days=day, hours=18)
        for _ in range(rng.randint(1, 3)):
            items.append(
                EpisodeInput(
                    customer_id=rng.choice(people),
                    kind="visit",
                    location=harbour,
                    occurred_at=when + timedelta(minutes=rng.randrange(180)),
                    touchpoints=VALET,
                    source="pos",
                )
            )
        if rng.random() < 0.6:
            items.append(
                EpisodeInput(
                    customer_id=rng.choice(people),
                    kind="order",
                    location=locations[0],
                    occurred_at=when + timedelta(minutes=rng.randrange(120)),
                    touchpoints=DELIVERY,
                    source="api",
                )
            )
    for chunk in range(0, len(items), 500):
        record_episodes_bulk(organization=org, items=items[chunk : chunk + 500], now=now)

    # The failures, each lived at its own time: the case, the incident, the partner's answer.
    failures = []
    for day in sorted(rng.sample(range(3, 30 * MONTHS - 2), 14)):
        is_valet = rng.random() < 0.65
        failures.append((start + timedelta(days=day, hours=19), is_valet))
    for when, is_valet in failures:
        partner, touchpoints = (valet, VALET) if is_valet else (courier, DELIVERY)
        stories = VALET_STORIES if is_valet else DELIVERY_STORIES
        episode = record_episode(
            organization=org,
            data=EpisodeInput(
                customer_id=rng.choice(people),
                kind="complaint",
                location=harbour if is_valet else locations[0],
                occurred_at=when,
                summary=rng.choice(stories),
                touchpoints=touchpoints,
                experience=rng.choice([-2, -2, -1]),
                source="feedback_form",
            ),
            now=when,
        ).episode
        opened_at = when + org.recovery_grace_period + timedelta(minutes=5)
        sweep_recovery(now=opened_at)
        case = RecoveryCase.objects.filter(customer_id=episode.customer_id, status="open").first()
        if case is None:
            continue
        # With the sweep's hook in place the sweep opened it already; this adds nothing then.
        open_incidents_for(links=[(case, [episode])], now=opened_at)
        if when < now - timedelta(days=10):
            # Staff called the guest the next day (the guest is the business's): resolved.
            called = when + timedelta(days=1)
            record_episode(
                organization=org,
                data=EpisodeInput(customer_id=episode.customer_id, kind="recovery",
                                  occurred_at=called, location=episode.location,
                                  summary="Called to apologise; the next one is on us",
                                  source="staff"),
                now=called,
            )  # fmt: skip
            sweep_recovery(now=called + timedelta(minutes=5))
        incident = partner.incidents.filter(episode=episode).first()
        if incident is None or opened_at > now - timedelta(days=4):
            continue  # the latest stay open: the partner has not answered yet
        answered_at = opened_at + timedelta(hours=rng.uniform(2, 30 if is_valet else 60))
        roll = rng.random()
        if roll < 0.15:
            dispute_incident(incident=incident, by=None, now=answered_at,
                             note="Our records show the order left on time.")  # fmt: skip
        elif roll < 0.7:
            answer_incident(incident=incident, answer=rng.choice(ANSWERS), by=None,
                            now=answered_at)  # fmt: skip
            if rng.random() < 0.7:
                fix_incident(incident=incident, by=None, now=answered_at + timedelta(days=2))
        elif roll < 0.85:
            fix_incident(incident=incident, by=None, now=answered_at)
    return [valet, courier]

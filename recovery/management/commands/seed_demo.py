"""Demo data for a first run: one cafe group, two locations, six months of narrative lived day
by day, so the queue, the case histories and the insights are real on the first page view.

It lives in the recovery app because it runs the recovery sweeps while it replays the past.
"""

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, Role, User
from accounts.services import add_member, create_api_key, create_organization
from cxcore.models import Customer, EpisodeKind, Identifier, Source
from cxcore.services import EpisodeInput, record_episodes_bulk
from partners.demo import seed_partners
from recovery.demo_evidence import seed_evidence
from recovery.escalation import escalate_overdue
from recovery.models import CaseKind, CaseStatus, RecoveryCase
from recovery.outcomes import measure_outcomes
from recovery.services import dismiss_case
from recovery.sweep import sweep_care, sweep_recovery

DEMO_SLUG = "corner-cup"
LONDON = ZoneInfo("Europe/London")
OWNER_EMAIL = "owner@example.com"
STAFF_EMAIL = "barista@example.com"
DEMO_PASSWORD = "comeback-demo"

FIRST = [
    "Amara",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Finn",
    "Grace",
    "Hugo",
    "Isla",
    "Jonah",
    "Kemi",
    "Liam",
    "Maya",
    "Noah",
    "Olu",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Umar",
    "Vera",
    "Will",
    "Yara",
    "Zane",
    "Aisha",
    "Bruno",
    "Cara",
    "Dara",
    "Eli",
    "Fatima",
    "Gus",
    "Hana",
    "Ivan",
    "Jess",
    "Kai",
    "Lena",
    "Milo",
    "Nina",
    "Omar",
]
LAST = [
    "Adams",
    "Baker",
    "Clarke",
    "Davies",
    "Evans",
    "Foster",
    "Green",
    "Hughes",
    "Iqbal",
    "Jones",
    "Khan",
    "Lewis",
    "Morgan",
    "Nash",
    "Owen",
    "Patel",
    "Quinn",
    "Reid",
    "Shaw",
    "Turner",
    "Underwood",
    "Vaughan",
    "Walsh",
    "Young",
]
DRINKS = [
    "Flat white",
    "Oat latte",
    "Cappuccino",
    "Americano",
    "Chai latte",
    "Espresso",
    "Almond-milk latte",
    "Hot chocolate",
]
FOOD = [
    "Almond croissant",
    "Banana bread",
    "Avocado toast",
    "Granola bowl",
    "Halloumi wrap",
    "Caesar salad",
    "Cheese toastie",
]
PRAISE = [
    "Lovely coffee as always, thank you!",
    "Best flat white in town.",
    "Staff were so friendly today.",
    "Amazing brunch, we'll be back.",
]
GRUMBLES = [
    "Coffee was lukewarm.",
    "Long queue and the order came out wrong.",
    "Table was sticky and nobody cleaned it.",
]


HISTORY_DAYS = 180
FOLLOW_UPS = [
    "Apologised at the counter and comped their coffee.",
    "Called them back; they were glad we did.",
    "Manager apologised in person.",
]


def at_local(day: datetime, hour: int, minute: int) -> datetime:
    """That day's hour:minute on a London clock, as a UTC instant."""
    return day.astimezone(LONDON).replace(hour=hour, minute=minute).astimezone(UTC)


class Command(BaseCommand):
    help = "Load the demo cafe group once (does nothing if it exists); writes the demo credentials."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=300)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, customers, seed, **options):
        credentials = Path(settings.VAR_DIR) / "demo-credentials.txt"
        if Organization.objects.filter(slug=DEMO_SLUG).exists():
            self.stdout.write("Demo data already loaded.")
            return
        with transaction.atomic():
            api_key = self._seed(customers, random.Random(seed))
        credentials.parent.mkdir(parents=True, exist_ok=True)
        credentials.write_text(
            f"owner login: {OWNER_EMAIL} / {DEMO_PASSWORD}\n"
            f"staff login: {STAFF_EMAIL} / {DEMO_PASSWORD}\n"
            f"API key (Main Street till): {api_key}\n"
        )
        self.stdout.write(f"Demo data loaded; credentials in {credentials}")

    def _seed(self, n_customers: int, rng: random.Random) -> str:
        owner = User.objects.create_user(OWNER_EMAIL, DEMO_PASSWORD, name="Olivia Owner")
        org = create_organization(
            name="Corner Cup Cafés",
            location_names=["Main Street", "Harbour Road"],
            country="GB",
            time_zone="Europe/London",
            owner=owner,
        )
        Organization.objects.filter(pk=org.pk).update(slug=DEMO_SLUG)
        org.refresh_from_db()
        main, harbour = org.locations.order_by("pk")
        barista = User.objects.create_user(STAFF_EMAIL, DEMO_PASSWORD, name="Ben Barista")
        add_member(organization=org, user=barista, role=Role.STAFF, locations=[main])
        _, raw_key = create_api_key(organization=org, location=main, name="Main Street till")

        now = timezone.now().replace(second=0, microsecond=0)
        start = now - timedelta(days=HISTORY_DAYS)
        people = self._customers(org, n_customers, rng)
        items: list[EpisodeInput] = []
        for index, customer in enumerate(people):
            regular = index < n_customers // 4
            usual = [rng.choice(DRINKS)] + ([rng.choice(FOOD)] if rng.random() < 0.4 else [])
            gap = rng.uniform(3, 8) if regular else rng.uniform(15, 60)
            when = start + timedelta(days=rng.uniform(0, 30 if regular else HISTORY_DAYS - 10))
            home = main if rng.random() < 0.7 else harbour
            while when < now - timedelta(hours=3):
                local_hour = rng.choice([8, 8, 9, 10, 12, 13, 15])
                when = at_local(when, local_hour, rng.randrange(60))
                if when > now - timedelta(hours=2):
                    break
                visit = self._visit(customer, home, when, usual, rng)
                items.append(visit)
                follow_up = (
                    self._follow_up(customer, home, when, now, rng) if visit.rating else None
                )
                if follow_up is not None:
                    items.append(follow_up)
                if visit.rating and rng.random() < (0.2 if follow_up else 0.45):
                    break  # a bad experience lost them; fewer when someone followed up
                when += timedelta(days=max(1.0, rng.gauss(gap, gap / 4)))
        stories, story_people = self._stories(org, main, harbour, now, rng)
        items += stories
        items.sort(key=lambda item: item.occurred_at or now)
        self._replay(org, items, start, now, rng, untouched=story_people)
        # Enough randomised cases for "Does care work?" and "What works" to show a result,
        # and partners with a month of incidents for their scorecard.
        seed_evidence(organization=org, location=main, now=now, rng=rng)
        seed_partners(org, now)
        return raw_key

    def _replay(
        self,
        org: Organization,
        items: list[EpisodeInput],
        start: datetime,
        now: datetime,
        rng: random.Random,
        untouched: set[int],
    ) -> None:
        """Live the past day by day: that day's episodes as the POS would have sent them, then
        the evening's sweeps, staff working (or not) the cases that came up, escalations and
        outcomes; and one last sweep now, so the queue is not empty for the first minute.

        The follow-ups are in the episodes (a call back, an apology at the counter), so the
        sweep resolves those cases; managers dismiss some of the rest, so insights compares
        real cohorts. The DESIGN.md stories (`untouched`) stay open."""
        plans: dict[int, datetime | None] = {}
        evening = at_local(start, 18, 0)
        position = 0
        while True:
            until = min(evening, now)
            batch = []
            while position < len(items) and (items[position].occurred_at or now) <= until:
                batch.append(items[position])
                position += 1
            for chunk in range(0, len(batch), 500):
                results = record_episodes_bulk(
                    organization=org, items=batch[chunk : chunk + 500], now=until
                )
                failed = [r.error for r in results if r.error is not None]
                if failed:
                    raise CommandError(f"Demo episode refused: {failed[0].field}: {failed[0]}")
            sweep_recovery(now=until)
            sweep_care(now=until)
            if until >= now:
                break
            self._work_cases(org, until, rng, plans, untouched)
            escalate_overdue(now=until)
            measure_outcomes(now=until)
            evening += timedelta(days=1)
        measure_outcomes(now=now)

    def _work_cases(
        self,
        org: Organization,
        at: datetime,
        rng: random.Random,
        plans: dict[int, datetime | None],
        untouched: set[int],
    ) -> None:
        """Cases nobody followed up: a manager dismisses some after a few days (spoke to them,
        all fine); the rest stay open until their outcome is measured as not followed up.

        Every open case draws from `rng`, held out or not, so the draws do not depend on which
        care cases the id-seeded randomisation held out; and until one dismissal has happened
        every new recovery case is planned for one, so a small demo shows a dismissed cohort."""
        dismissed_any = (
            RecoveryCase.objects.for_org(org)
            .filter(kind=CaseKind.RECOVERY, status=CaseStatus.DISMISSED)
            .exists()
        )
        for case in (
            RecoveryCase.objects.for_org(org)
            .open()
            .exclude(customer_id__in=untouched)
            .select_related("organization")
            .order_by("pk")
        ):
            if case.pk not in plans:
                roll, delay = rng.random(), rng.uniform(3, 6)
                # A held-out care case is nobody's to dismiss.
                first = case.kind == CaseKind.RECOVERY and not dismissed_any
                dismiss = not case.held_out and (roll < 0.3 or first)
                plans[case.pk] = case.opened_at + timedelta(days=delay) if dismiss else None
            when = plans[case.pk]
            if when is not None and when <= at:
                dismiss_case(case=case, reason="Spoke to them at the counter: all fine.", now=at)
                dismissed_any = dismissed_any or case.kind == CaseKind.RECOVERY

    def _follow_up(
        self, customer, location, when: datetime, now: datetime, rng: random.Random
    ) -> EpisodeInput | None:
        """After a grumble: a call back the next day, an apology at the counter a few days
        later, or nothing (the case waits in the queue)."""
        roll = rng.random()
        if roll < 0.3:
            kind, at, summary = EpisodeKind.OUTREACH, when + timedelta(hours=20), FOLLOW_UPS[1]
        elif roll < 0.65:
            at = when + timedelta(days=rng.uniform(1, 4))
            kind, summary = EpisodeKind.RECOVERY, rng.choice([FOLLOW_UPS[0], FOLLOW_UPS[2]])
        else:
            return None
        if at >= now - timedelta(hours=1):
            return None
        return EpisodeInput(
            kind=kind,
            customer_id=customer.pk,
            location=location,
            occurred_at=at,
            source=Source.STAFF,
            summary=summary,
        )

    def _customers(self, org, count: int, rng: random.Random) -> list[Customer]:
        people = []
        for index in range(count):
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            customer = Customer.objects.create(organization=org, name=name)
            idents = [
                Identifier(
                    organization=org,
                    customer=customer,
                    kind="phone",
                    value=f"+447400{100000 + index:06d}",
                )
            ]
            if rng.random() < 0.5:
                email = f"{name.lower().replace(' ', '.')}.{index}@example.com"
                idents.append(
                    Identifier(organization=org, customer=customer, kind="email", value=email)
                )
            Identifier.objects.bulk_create(idents)
            people.append(customer)
        return people

    def _visit(self, customer, location, when: datetime, usual, rng) -> EpisodeInput:
        roll = rng.random()
        order = [{"name": name, "quantity": 1, "price": "3.40"} for name in usual]
        if roll < 0.03:
            return EpisodeInput(
                kind=EpisodeKind.COMPLIMENT,
                customer_id=customer.pk,
                location=location,
                occurred_at=when,
                source=Source.STAFF,
                summary=rng.choice(PRAISE),
            )
        if roll < 0.06:
            return EpisodeInput(
                kind=EpisodeKind.FEEDBACK,
                customer_id=customer.pk,
                location=location,
                occurred_at=when,
                source=Source.FEEDBACK_FORM,
                summary=rng.choice(GRUMBLES),
                rating={"scale": "stars5", "value": 2},
            )
        experience = rng.choice([None, None, None, 0, 1, 1, 2]) if roll < 0.5 else None
        return EpisodeInput(
            kind=EpisodeKind.ORDER,
            customer_id=customer.pk,
            location=location,
            occurred_at=when,
            source=Source.POS,
            items=order,
            experience=experience,
        )

    def _stories(
        self, org, main, harbour, now: datetime, rng
    ) -> tuple[list[EpisodeInput], set[int]]:
        """The stories DESIGN.md tells: a forgotten order in a rush, a valet delay, a regular
        gone quiet; and who they are about."""
        daniel = Customer.objects.create(
            organization=org,
            name="Daniel Reyes",
            notes="Prefers 'Dan'. Oat or almond milk, never dairy.",
        )
        Identifier.objects.bulk_create(
            [
                Identifier(organization=org, customer=daniel, kind="phone", value="+447400900555"),
                Identifier(
                    organization=org, customer=daniel, kind="email", value="dan.reyes@example.com"
                ),
            ]
        )
        latte_salad = [
            {"name": "Almond-milk latte", "quantity": 1, "price": "3.60"},
            {"name": "Caesar salad", "quantity": 1, "price": "8.50"},
        ]
        stories = []
        day = now - timedelta(days=120)
        while day < now - timedelta(days=12):  # a regular: twice a week, almond latte
            stories.append(
                EpisodeInput(
                    kind=EpisodeKind.ORDER,
                    customer_id=daniel.pk,
                    location=main,
                    occurred_at=at_local(day, 12, 20),
                    source=Source.POS,
                    items=latte_salad[: 1 + (day.day % 2)],
                )
            )
            day += timedelta(days=rng.choice([3, 4]))
        rush = at_local(now - timedelta(days=9), 12, 40)
        stories += [
            EpisodeInput(
                kind=EpisodeKind.ORDER,
                customer_id=daniel.pk,
                location=main,
                occurred_at=rush,
                source=Source.POS,
                summary="Fundraiser rush: order taken at the counter.",
                items=latte_salad,
            ),
            EpisodeInput(
                kind=EpisodeKind.COMPLAINT,
                customer_id=daniel.pk,
                location=main,
                occurred_at=rush + timedelta(hours=5),
                source=Source.FEEDBACK_FORM,
                summary="During the fundraiser the cashier forgot to ring in my salad and "
                "almond-milk latte. I waited 30 minutes and left hungry and angry.",
                touchpoints=[
                    {"code": "order_accuracy", "third_party": False},
                    {"code": "staff", "third_party": False},
                ],
                experience=-2,
            ),
            EpisodeInput(
                kind=EpisodeKind.VISIT,
                customer_id=daniel.pk,
                location=main,
                occurred_at=now - timedelta(days=4, hours=2),
                source=Source.POS,
            ),
        ]
        margaret = Customer.objects.create(organization=org, name="Margaret Chen")
        Identifier.objects.create(
            organization=org, customer=margaret, kind="phone", value="+447400900777"
        )
        for weeks in (10, 7, 4):
            stories.append(
                EpisodeInput(
                    kind=EpisodeKind.ORDER,
                    customer_id=margaret.pk,
                    location=harbour,
                    occurred_at=at_local(now - timedelta(weeks=weeks), 19, 5),
                    source=Source.POS,
                    experience=1,
                    items=[{"name": "Sea bass", "quantity": 1, "price": "21.00"}],
                )
            )
        valet = at_local(now - timedelta(days=3), 21, 15)
        stories.append(
            EpisodeInput(
                kind=EpisodeKind.INCIDENT,
                customer_id=margaret.pk,
                location=harbour,
                occurred_at=valet,
                source=Source.STAFF,
                summary="Valet took 45 minutes to bring her car round after dinner.",
                touchpoints=[{"code": "parking_valet", "third_party": True}],
                experience=-1,
            )
        )
        # A regular who stopped coming: weekly for months, nothing for six weeks (care case).
        priya = Customer.objects.create(organization=org, name="Priya Nair")
        Identifier.objects.create(
            organization=org, customer=priya, kind="phone", value="+447400900888"
        )
        for weeks in range(26, 6, -1):
            stories.append(
                EpisodeInput(
                    kind=EpisodeKind.ORDER,
                    customer_id=priya.pk,
                    location=main,
                    occurred_at=at_local(now - timedelta(weeks=weeks), 8, 15),
                    source=Source.POS,
                    items=[{"name": "Chai latte", "quantity": 1, "price": "3.40"}],
                )
            )
        return stories, {daniel.pk, margaret.pk, priya.pk}

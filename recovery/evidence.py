"""The evidence: does care work, and which of a playbook's actions work best.

Two comparisons, each between groups a seeded random draw made (recovery.lifecycle.draw), so
a difference between them is what the treatment causes, not who got it:

- **Does care work?** Care cases for lapsing regulars opened since the draw began
  (`draw_seed` recorded) whose outcome window (the organization's `recovery_outcome_window`)
  has ended: the share of worked and of held-out regulars who **came back**, a visit within
  the window after the case opened. Both arms are measured from the opening, whatever
  happened to the case, so staff choosing whom to call cannot tilt it ("intent to treat").
  Counted per case. A drifting regular still comes, so that they came back says nothing:
  drift cases are left out of this figure.
- **What works** (per playbook, per variant): the cases each variant was drawn for; the
  **recovered** share of those whose outcome is measured (recovery.outcomes: came back within
  the window with a non-negative next experience, `Outcome.RECOVERED`); and the **spend back**
  share: of the cases whose window (from opening) has ended and whose customer spent in the
  90 days before the case, those whose mean spend per visit within the window is at least
  their own mean before. Visits without a spend count in neither mean; a customer who did not
  come back is not back. Spend is price × quantity of an episode's items, as everywhere.

Every share carries its 95% Wilson interval (statsmodels `proportion_confint`), every
difference its 95% Newcomb interval (statsmodels `confint_proportions_2indep`, the hybrid
score interval: it keeps its coverage with small groups and shares near 0 or 1, where the
Wald interval does not). Below `MIN_PER_ARM` cases in either group a comparison says "not
enough data yet" rather than a difference that would swing with a handful of customers.

The reads are set-based: the holdout comparison is one aggregate, the ledger one grouped
aggregate and one grouped statement for spend, whatever the number of cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connections
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from accounts.models import Location
from accounts.tenancy import Tenant
from cxcore.models import Episode
from cxcore.rules import spend_of
from cxcore.vocabulary import VISIT_KINDS
from imports.history_fold import SPEND_OF_ITEMS
from recovery.models import (
    CareReason,
    CaseKind,
    Outcome,
    Playbook,
    RecoveryCase,
    RecoveryCaseQuerySet,
)
from recovery.rules import first_name_of
from recovery.selectors import cases_for

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
# Below this many measured cases in either group, a comparison is "not enough data yet": at
# 30 per group a 15-point difference in return rates is still inside the noise, so a smaller
# sample would mostly show chance.
MIN_PER_ARM = 30
# The customer's own baseline for spend: their visits in this long before the case opened.
SPEND_BASELINE = timedelta(days=90)


# --- the statistics (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class Share:
    """`count` of `n`, with its 95% Wilson interval (None when n is 0)."""

    count: int
    n: int
    low: float | None = None
    high: float | None = None

    @property
    def value(self) -> float | None:
        return self.count / self.n if self.n else None

    @property
    def interval(self) -> str:
        """'42–75%', or '' without cases."""
        if self.low is None or self.high is None:
            return ""
        return f"{round(self.low * 100)}–{round(self.high * 100)}%"


def share_of(count: int, n: int) -> Share:
    if not 0 <= count <= n:
        raise ValueError(f"A share is 0 to n of n, not {count} of {n}.")
    if n == 0:
        return Share(0, 0)
    # ~1.5 s to import (pandas): lazily, so only the insights pay it.
    from statsmodels.stats.proportion import proportion_confint  # type: ignore[import-untyped]

    low, high = proportion_confint(count, n, alpha=ALPHA, method="wilson")
    return Share(count, n, float(low), float(high))


@dataclass(frozen=True)
class Difference:
    """a − b in share points (0.15 is 15 points), with its 95% interval."""

    value: float
    low: float
    high: float

    @property
    def is_significant(self) -> bool:
        """The interval leaves out zero: chance alone would rarely give this difference."""
        return self.low > 0 or self.high < 0

    @property
    def in_points(self) -> str:
        """'+15', '−3', '0'."""
        return points(self.value)

    @property
    def label(self) -> str:
        """'+15 points (95% interval +1 to +28)'."""
        return (
            f"{points(self.value)} points (95% interval {points(self.low)} to {points(self.high)})"
        )


def difference_of(a: Share, b: Share) -> Difference | None:
    """The difference of two independent shares, a − b, with its Newcomb interval."""
    if not a.n or not b.n:
        return None
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(
        a.count, a.n, b.count, b.n, method="newcomb", compare="diff", alpha=ALPHA
    )
    return Difference(a.count / a.n - b.count / b.n, float(low), float(high))


@dataclass(frozen=True)
class Comparison:
    """Two groups' shares and, once both have `min_per_arm` cases, their difference a − b."""

    a: Share
    b: Share
    difference: Difference | None
    min_per_arm: int = MIN_PER_ARM

    @property
    def is_enough(self) -> bool:
        return self.a.n >= self.min_per_arm and self.b.n >= self.min_per_arm

    @property
    def n(self) -> int:
        return self.a.n + self.b.n


def compare(a: Share, b: Share, *, min_per_arm: int = MIN_PER_ARM) -> Comparison:
    enough = a.n >= min_per_arm and b.n >= min_per_arm
    return Comparison(a, b, difference_of(a, b) if enough else None, min_per_arm)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{round(value * 100)}%"


def points(value: float) -> str:
    """A difference in share points, signed: '+15', '−3', '0'."""
    n = round(value * 100)
    return f"+{n}" if n > 0 else (f"−{-n}" if n < 0 else "0")


def verdict(label_a: str, label_b: str, comparison: Comparison) -> str:
    """The sentence an owner reads: 'apology + comp 71% vs apology only 69% (n=212), no
    significant difference'; or 'not enough data yet' with what is missing."""
    a, b, diff = comparison.a, comparison.b, comparison.difference
    if diff is None:
        return (
            f"Not enough data yet: {a.n} {label_a} and {b.n} {label_b}; "
            f"each needs {comparison.min_per_arm}."
        )
    # The higher share first: "71% vs 69%" reads as the comparison it is.
    (first, x), (second, y) = sorted(
        ((label_a, a), (label_b, b)), key=lambda pair: -(pair[1].value or 0)
    )
    head = f"{first} {percent(x.value)} vs {second} {percent(y.value)} (n={comparison.n})"
    if not diff.is_significant:
        return f"{head}, no significant difference"
    low, high = sorted((abs(diff.low), abs(diff.high)))
    return (
        f"{head}: {first} ahead by {abs(round(diff.value * 100))} points "
        f"(95% interval {round(low * 100)} to {round(high * 100)})"
    )


# --- does care work? -------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldoutComparison:
    worked: Share  # came back, of the worked care cases whose window ended
    held_out: Share  # came back, of the held-out ones
    comparison: Comparison  # worked − held out
    window: timedelta
    holdout_share: int  # the organization's current setting, in percent

    @property
    def sentence(self) -> str:
        return verdict("worked", "held out", self.comparison)


def _scoped(tenant: Tenant, location: Location | None) -> RecoveryCaseQuerySet:
    cases = cases_for(tenant)
    return cases.filter(location=location) if location is not None else cases


def holdout_comparison(
    *, tenant: Tenant, now: datetime, location: Location | None = None
) -> HoldoutComparison:
    """Return rates of worked vs held-out care cases whose window has ended (one query)."""
    org = tenant.organization
    window = org.recovery_outcome_window
    came_back = Exists(
        Episode.objects.for_tenant(tenant).filter(
            customer_id=OuterRef("customer_id"),
            kind__in=VISIT_KINDS,
            occurred_at__gt=OuterRef("opened_at"),
            occurred_at__lte=OuterRef("opened_at") + window,
        )
    )
    worked, held = Q(held_out=False), Q(held_out=True)
    figures = (
        _scoped(tenant, location)
        # Only cases drawn while a holdout was on: a case that could not be held out is no
        # part of the randomised comparison (a period with the holdout off, say).
        .filter(kind=CaseKind.CARE, holdout_share__gt=0, opened_at__lte=now - window)
        .exclude(care_reason=CareReason.DRIFTING)
        .aggregate(
            worked=Count("id", filter=worked),
            worked_back=Count("id", filter=worked & Q(came_back)),
            held=Count("id", filter=held),
            held_back=Count("id", filter=held & Q(came_back)),
        )
    )
    a = share_of(figures["worked_back"], figures["worked"])
    b = share_of(figures["held_back"], figures["held"])
    return HoldoutComparison(a, b, compare(a, b), window, org.care_holdout_share)


# --- what works: the ledger per playbook and variant ----------------------------------------


@dataclass(frozen=True)
class VariantFigures:
    variant_id: int
    name: str
    cases: int  # cases this variant was drawn for
    recovered: Share  # of those with a measured outcome
    spend_back: Share  # of those whose window ended, with a spend before
    is_kept: bool = False
    # This variant against the playbook's first (by position); None for the first.
    versus_first: Comparison | None = None
    sentence: str = ""


@dataclass(frozen=True)
class PlaybookLedger:
    playbook_id: int
    name: str
    is_running: bool  # the experiment goes on (not ended)
    variants: list[VariantFigures] = field(default_factory=list)

    @property
    def cases(self) -> int:
        return sum(v.cases for v in self.variants)


def playbook_ledger(
    *, tenant: Tenant, now: datetime, location: Location | None = None
) -> list[PlaybookLedger]:
    """Per playbook with variant cases, per variant: cases, recovered, spend back, and each
    variant against the first."""
    cases = _scoped(tenant, location).filter(variant__isnull=False)
    # Only cases whose window has ended: a return is measured at once, a loss only at the end,
    # so counting younger cases would count their successes alone.
    ended = Q(opened_at__lte=now - tenant.organization.recovery_outcome_window)
    measured = ended & ~Q(outcome="")
    rows = list(
        cases.values("playbook_id", "variant_id", "variant__name", "variant__position")
        .annotate(
            n=Count("id"),
            measured=Count("id", filter=measured),
            recovered=Count("id", filter=ended & Q(outcome=Outcome.RECOVERED)),
        )
        .order_by("playbook_id", "variant__position", "variant_id")
    )
    if not rows:
        return []
    spend = _spend_back(cases, window=tenant.organization.recovery_outcome_window, now=now)
    playbooks = {
        p.pk: p
        for p in Playbook.objects.for_tenant(tenant)
        .filter(pk__in={r["playbook_id"] for r in rows})
        .only("id", "name", "experiment_ended_at", "kept_variant_id")
    }
    ledgers: dict[int, PlaybookLedger] = {}
    for row in rows:
        playbook = playbooks.get(row["playbook_id"])
        if playbook is None:  # a variant outliving its playbook cannot happen (CASCADE)
            continue
        ledger = ledgers.setdefault(
            playbook.pk,
            PlaybookLedger(playbook.pk, playbook.name, playbook.experiment_ended_at is None),
        )
        with_spend, back = spend.get(row["variant_id"], (0, 0))
        recovered = share_of(row["recovered"], row["measured"])
        first = ledger.variants[0] if ledger.variants else None
        versus = compare(recovered, first.recovered) if first else None
        name = row["variant__name"]
        ledger.variants.append(
            VariantFigures(
                variant_id=row["variant_id"],
                name=name,
                cases=row["n"],
                recovered=recovered,
                spend_back=share_of(back, with_spend),
                is_kept=playbook.kept_variant_id == row["variant_id"],
                versus_first=versus,
                sentence=verdict(name, first.name, versus) if first and versus else "",
            )
        )
    return list(ledgers.values())


_SPEND_BACK = f"""
WITH c AS ({{cases}}),
visit AS (
    SELECT c.id AS case_id, e.occurred_at > c.opened_at AS after,
           {SPEND_OF_ITEMS.format(items="e.items")} AS spend
    FROM c JOIN {Episode._meta.db_table} e ON e.customer_id = c.customer_id
    WHERE e.kind = ANY(%s)
      AND e.occurred_at > c.opened_at - %s AND e.occurred_at <= c.opened_at + %s
),
per_case AS (
    SELECT case_id,
           avg(spend) FILTER (WHERE NOT after) AS before,
           avg(spend) FILTER (WHERE after) AS since
    FROM visit WHERE spend > 0 GROUP BY case_id
)
SELECT c.variant_id,
       count(*) FILTER (WHERE p.before IS NOT NULL),
       count(*) FILTER (WHERE p.since >= p.before)
FROM c JOIN per_case p ON p.case_id = c.id
GROUP BY c.variant_id
"""


def _spend_back(
    cases: QuerySet[RecoveryCase], *, window: timedelta, now: datetime
) -> dict[int, tuple[int, int]]:
    """Per variant: (cases whose window ended with a spend before, those back to it), in one
    statement over the customers' visits in the 90 days before and the window after (served
    by the episode_customer_timeline index)."""
    ended = (
        cases.filter(opened_at__lte=now - window)
        .order_by()
        .values("id", "variant_id", "customer_id", "opened_at")
    )
    connection = connections[ended.db]
    if connection.vendor != "postgresql":
        return _spend_back_in_python(ended, window=window)
    sql, params = ended.query.sql_with_params()
    args: list[Any] = [*params, sorted(VISIT_KINDS), SPEND_BASELINE, window]
    with connection.cursor() as cursor:
        cursor.execute(_SPEND_BACK.format(cases=sql), args)
        return {variant: (with_spend, back) for variant, with_spend, back in cursor.fetchall()}


def _spend_back_in_python(ended: QuerySet, *, window: timedelta) -> dict[int, tuple[int, int]]:
    """The same figures for the embedded SQLite of `make run` (no jsonb there): a laptop's
    few cases, their customers' visits read once and averaged here."""
    cases = list(ended)
    if not cases:
        return {}
    visits: dict[int, list[tuple[datetime, Decimal]]] = {}
    for customer_id, occurred_at, items in Episode.objects.filter(
        customer_id__in={c["customer_id"] for c in cases},
        kind__in=VISIT_KINDS,
        occurred_at__gt=min(c["opened_at"] for c in cases) - SPEND_BASELINE,
        occurred_at__lte=max(c["opened_at"] for c in cases) + window,
    ).values_list("customer_id", "occurred_at", "items"):
        visits.setdefault(customer_id, []).append((occurred_at, spend_of(items or [])))
    figures: dict[int, tuple[int, int]] = {}
    for case in cases:
        opened = case["opened_at"]
        spends = [
            (at > opened, spend)
            for at, spend in visits.get(case["customer_id"], [])
            if opened - SPEND_BASELINE < at <= opened + window and spend > 0
        ]
        before = [spend for after, spend in spends if not after]
        since = [spend for after, spend in spends if after]
        if not before:
            continue
        with_spend, back = figures.get(case["variant_id"], (0, 0))
        is_back = bool(since) and sum(since) / len(since) >= sum(before) / len(before)
        figures[case["variant_id"]] = (with_spend + 1, back + is_back)
    return figures


# --- care now: why the open care cases opened ----------------------------------------------

NEWEST_REASONS = 5


@dataclass(frozen=True)
class CareLine:
    case_id: int
    first_name: str
    care_reason: str
    why_now: str


@dataclass(frozen=True)
class CareNow:
    """The worked care cases open now, by why they opened, and the newest of them."""

    lapsing: int
    drifting: int
    newest: list[CareLine]


def care_now(*, tenant: Tenant, location: Location | None = None) -> CareNow:
    """Open worked care cases by reason (one grouped read) and the newest few lines (one more,
    through the case_queue index's organization and status)."""
    open_care = _scoped(tenant, location).open().worked().filter(kind=CaseKind.CARE)
    counts = open_care.aggregate(
        drifting=Count("id", filter=Q(care_reason=CareReason.DRIFTING)),
        n=Count("id"),
    )
    newest = [
        CareLine(pk, first_name_of(name), reason, why)
        for pk, name, reason, why in open_care.order_by("-opened_at", "-id").values_list(
            "id", "customer__name", "care_reason", "why_now"
        )[:NEWEST_REASONS]
    ]
    return CareNow(counts["n"] - counts["drifting"], counts["drifting"], newest)


# --- all of it, for the insights page and the API -------------------------------------------


@dataclass(frozen=True)
class Evidence:
    holdout: HoldoutComparison
    playbooks: list[PlaybookLedger]
    care_now: CareNow
    min_per_arm: int = MIN_PER_ARM


def evidence(*, tenant: Tenant, now: datetime, location: Location | None = None) -> Evidence:
    """What insights show under "Does care work?" and "What works" (at most six queries)."""
    return Evidence(
        holdout=holdout_comparison(tenant=tenant, now=now, location=location),
        playbooks=playbook_ledger(tenant=tenant, now=now, location=location),
        care_now=care_now(tenant=tenant, location=location),
    )

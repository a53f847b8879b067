"""The evidence figures: intervals against hand computations, their coverage over simulated
populations whose true effect is known, and the set-based reads on a constructed history."""

import math
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone

from accounts.tenancy import Tenant
from cxcore.models import Customer, Episode
from cxcore.rules import NarrativeState
from cxcore.services import narrative_from_episodes
from recovery.demo_evidence import seed_evidence
from recovery.evidence import (
    MIN_PER_ARM,
    _spend_back,
    _spend_back_in_python,
    care_now,
    compare,
    difference_of,
    evidence,
    holdout_comparison,
    playbook_ledger,
    share_of,
    verdict,
)
from recovery.models import Playbook, PlaybookVariant, RecoveryCase
from tests.factories import CustomerFactory, LocationFactory, OrganizationFactory

Z = 1.959963984540054  # the 97.5th percentile of the standard normal
NOW = datetime(2026, 11, 19, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


# --- the statistics, by hand ---------------------------------------------------------------


def test_a_share_carries_the_wilson_interval_computed_by_hand():
    # 7 of 10: p = 0.7, z² = 3.841459.
    # centre = (p + z²/2n) / (1 + z²/n) = (0.7 + 0.192073) / 1.384146 = 0.644490
    # half   = z·√(p(1−p)/n + z²/4n²) / (1 + z²/n) = 1.959964·√(0.021 + 0.009604) / 1.384146
    #        = 1.959964·0.174939 / 1.384146 = 0.247716
    share = share_of(7, 10)
    assert share.value == 0.7
    assert share.low == pytest.approx(0.644490 - 0.247716, abs=1e-5)  # 0.396774
    assert share.high == pytest.approx(0.644490 + 0.247716, abs=1e-5)  # 0.892206
    # The same formula, written once more with z itself.
    p, n = 0.7, 10
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    assert (share.low, share.high) == pytest.approx((centre - half, centre + half), abs=1e-9)


def test_a_share_of_none_or_all_stays_inside_zero_and_one():
    # 0 of 10: the Wilson interval is [0, z²/(n + z²)] = [0, 3.841459/13.841459] = [0, 0.277533]
    none = share_of(0, 10)
    assert none.low == pytest.approx(0, abs=1e-12)
    assert none.high == pytest.approx(0.277533, abs=1e-5)
    every = share_of(10, 10)
    assert every.low == pytest.approx(1 - 0.277533, abs=1e-5)
    assert every.high == pytest.approx(1, abs=1e-12)
    assert share_of(0, 0).value is None and share_of(0, 0).low is None
    with pytest.raises(ValueError):
        share_of(11, 10)


def test_a_difference_carries_the_newcomb_interval_computed_by_hand():
    # 7 of 10 against 3 of 10. Wilson: 7/10 → [0.396774, 0.892206]; 3/10 by symmetry →
    # [0.107794, 0.603226]. Newcomb's hybrid score interval for d = 0.7 − 0.3 = 0.4:
    #   low  = d − √((0.7 − 0.396774)² + (0.603226 − 0.3)²) = 0.4 − √(0.091946 + 0.091946)
    #        = 0.4 − 0.428820 = −0.028820
    #   high = d + √((0.892206 − 0.7)² + (0.3 − 0.107794)²) = 0.4 + √(0.036943 + 0.036943)
    #        = 0.4 + 0.271820 = 0.671820
    diff = difference_of(share_of(7, 10), share_of(3, 10))
    assert diff is not None
    assert diff.value == pytest.approx(0.4)
    assert diff.low == pytest.approx(-0.028820, abs=1e-5)
    assert diff.high == pytest.approx(0.671820, abs=1e-5)
    assert not diff.is_significant  # 10 a side: a 40-point gap is still within chance
    assert difference_of(share_of(0, 0), share_of(3, 10)) is None


def test_a_comparison_below_the_minimum_says_not_enough_data_yet():
    small = compare(share_of(20, 29), share_of(5, 40))
    assert not small.is_enough and small.difference is None
    assert verdict("worked", "held out", small) == (
        "Not enough data yet: 29 worked and 40 held out; each needs 30."
    )
    assert compare(share_of(20, MIN_PER_ARM), share_of(5, 40)).difference is not None


def test_the_verdict_reads_like_the_issue():
    # 75/106 = 70.8% and 73/106 = 68.9%: 71% vs 69% of n = 212.
    no_difference = compare(share_of(73, 106), share_of(75, 106))
    assert verdict("apology only", "apology + comp", no_difference) == (
        "apology + comp 71% vs apology only 69% (n=212), no significant difference"
    )
    # 55 of 100 against 40 of 100: Newcomb [0.011724, 0.280449] leaves out zero.
    significant = compare(share_of(55, 100), share_of(40, 100))
    assert significant.difference is not None
    assert significant.difference.low == pytest.approx(0.011724, abs=1e-5)
    assert significant.difference.high == pytest.approx(0.280449, abs=1e-5)
    assert verdict("worked", "held out", significant) == (
        "worked 55% vs held out 40% (n=200): worked ahead by 15 points (95% interval 1 to 28)"
    )
    behind = compare(share_of(40, 100), share_of(55, 100))
    assert verdict("worked", "held out", behind) == (
        "held out 55% vs worked 40% (n=200): held out ahead by 15 points (95% interval 1 to 28)"
    )


def test_the_interval_covers_the_true_difference_at_about_the_nominal_rate():
    """Outreach raises return from 40% to 55%: over 400 simulated organizations the 95%
    interval should hold the true +15 points about 95% of the time."""
    started = time.perf_counter()
    true_difference = 0.55 - 0.40
    covered = significant = 0
    seeds = range(400)
    for seed in seeds:
        rng = np.random.default_rng(seed)
        worked_n, held_n = 300, 100  # a 25% holdout
        worked = share_of(int(rng.binomial(worked_n, 0.55)), worked_n)
        held = share_of(int(rng.binomial(held_n, 0.40)), held_n)
        diff = compare(worked, held).difference
        assert diff is not None
        covered += diff.low <= true_difference <= diff.high
        significant += diff.is_significant
    coverage = covered / len(seeds)
    assert 0.92 <= coverage <= 0.98, coverage
    # And the test has power: with these sizes most organizations see the effect.
    assert significant / len(seeds) > 0.5
    assert time.perf_counter() - started < 5


def test_with_no_true_difference_the_interval_rarely_claims_one():
    false_alarms = 0
    for seed in range(400):
        rng = np.random.default_rng(10_000 + seed)
        a = share_of(int(rng.binomial(100, 0.5)), 100)
        b = share_of(int(rng.binomial(100, 0.5)), 100)
        diff = compare(a, b).difference
        assert diff is not None
        false_alarms += diff.is_significant
    assert false_alarms / 400 <= 0.08


# --- the reads, on a constructed history ----------------------------------------------------


def care_case(org, customer, *, opened_at, held_out, seed=1, share=10, **fields):
    return RecoveryCase(
        organization=org,
        customer=customer,
        kind="care",
        status="open",
        severity=1,
        opened_at=opened_at,
        ack_due_at=opened_at + 2 * DAY,
        due_at=opened_at + 7 * DAY,
        held_out=held_out,
        draw_seed=seed,
        holdout_share=share if seed is not None else None,
        care_reason="lapsing",
        **fields,
    )


def visit(org, customer, at, *, spend=None, location=None):
    items = [{"name": "Latte", "quantity": 1, "price": str(spend)}] if spend is not None else []
    return Episode(
        organization=org, customer=customer, kind="visit", occurred_at=at, items=items,
        location=location,
    )  # fmt: skip


@pytest.fixture
def holdout_history(org, main_st):
    """Care cases whose 30-day window ended (opened 40 days ago): 30 worked of which 18 came
    back, 30 held out of which 12 came back; and cases that must not count."""
    org.care_holdout_share = 10
    org.save(update_fields=["care_holdout_share"])
    opened = NOW - 40 * DAY
    people = CustomerFactory.create_batch(70, organization=org)
    cases, visits = [], []
    for i, person in enumerate(people[:60]):
        held = i >= 30
        cases.append(care_case(org, person, opened_at=opened, held_out=held, location=main_st))
        back = (i < 18) if not held else (i < 42)
        if back:
            visits.append(visit(org, person, opened + (i % 29 + 1) * DAY))
        else:
            visits.append(visit(org, person, opened - DAY))  # before the case: not a return
            visits.append(visit(org, person, opened + 31 * DAY))  # after the window: lost
    others = people[60:]
    # Not counted: no recorded draw (before the holdout began), window still running, a
    # recovery case, a drifting regular (who still comes), and another organization's.
    cases.append(care_case(org, others[0], opened_at=opened, held_out=False, seed=None))
    # ... nor one drawn while the holdout was off: it could not have been held out.
    cases.append(care_case(org, others[4], opened_at=opened, held_out=False, share=0))
    drifting = care_case(org, others[3], opened_at=opened, held_out=True)
    drifting.care_reason = "drifting"
    cases.append(drifting)
    cases.append(care_case(org, others[1], opened_at=NOW - 10 * DAY, held_out=True))
    recovery = care_case(org, others[2], opened_at=opened, held_out=False)
    recovery.kind = "recovery"
    cases.append(recovery)
    other_org = OrganizationFactory.create()
    stranger = CustomerFactory(organization=other_org)
    cases.append(care_case(other_org, stranger, opened_at=opened, held_out=True))
    for person in others[:5]:
        visits.append(visit(org, person, opened + DAY))
    RecoveryCase.objects.bulk_create(cases)
    Episode.objects.bulk_create(visits)


def test_the_holdout_comparison_counts_returns_within_the_window_from_opening(
    org, holdout_history, django_assert_num_queries
):
    tenant = Tenant(organization=org)
    share_of(1, 2)  # statsmodels imported outside the query count
    with django_assert_num_queries(1):
        result = holdout_comparison(tenant=tenant, now=NOW)
    assert (result.worked.count, result.worked.n) == (18, 30)
    assert (result.held_out.count, result.held_out.n) == (12, 30)
    assert result.window == timedelta(days=30) and result.holdout_share == 10
    diff = result.comparison.difference
    assert diff is not None and diff.value == pytest.approx(0.2)
    # By hand, Newcomb for 18/30 vs 12/30: Wilson 18/30 = [0.423204, 0.754094] and 12/30 =
    # [0.245906, 0.576796];
    #   low  = 0.2 − √((0.6 − 0.423204)² + (0.576796 − 0.4)²) = 0.2 − 0.250028 = −0.050028
    #   high = 0.2 + √((0.754094 − 0.6)² + (0.4 − 0.245906)²) = 0.2 + 0.217921 = 0.417921
    assert diff.low == pytest.approx(-0.050028, abs=1e-5)
    assert diff.high == pytest.approx(0.417921, abs=1e-5)
    assert result.sentence == "worked 60% vs held out 40% (n=60), no significant difference"


def test_the_holdout_comparison_follows_the_location_and_its_limits(org, main_st, holdout_history):
    harbour = LocationFactory.create(organization=org, name="Harbour Rd", slug="harbour-rd")
    at_harbour = holdout_comparison(tenant=Tenant(organization=org), now=NOW, location=harbour)
    assert at_harbour.worked.n == at_harbour.held_out.n == 0
    limited = Tenant(organization=org, location_ids=frozenset({harbour.pk}))
    assert holdout_comparison(tenant=limited, now=NOW).worked.n == 0
    assert "Not enough data yet" in at_harbour.sentence


@pytest.fixture
def experiment(org):
    playbook = Playbook.objects.create(organization=org, name="Order mix-up", position=1)
    apology, comp = (
        PlaybookVariant.objects.create(
            organization=org,
            playbook=playbook,
            name=name,
            actions=[name],
            position=i,
            created_at=NOW - 90 * DAY,
        )
        for i, name in enumerate(("apology only", "apology + comp"))
    )
    return playbook, apology, comp


def recovery_case(org, customer, variant, *, opened_at, outcome=""):
    return RecoveryCase(
        organization=org,
        customer=customer,
        kind="recovery",
        status="resolved" if outcome else "open",
        severity=2,
        playbook=variant.playbook,
        variant=variant,
        opened_at=opened_at,
        ack_due_at=opened_at + DAY,
        due_at=opened_at + 2 * DAY,
        draw_seed=7,
        outcome=outcome,
    )


def test_the_ledger_counts_cases_recovered_and_spend_back_per_variant(
    org, experiment, django_assert_max_num_queries
):
    _, apology, comp = experiment
    opened = NOW - 40 * DAY
    people = CustomerFactory.create_batch(9, organization=org)
    cases, visits = [], []

    def with_spend(person, before, after):
        for k, amount in enumerate(before):
            visits.append(visit(org, person, opened - (k + 1) * 10 * DAY, spend=amount))
        for k, amount in enumerate(after):
            visits.append(visit(org, person, opened + (k + 1) * 5 * DAY, spend=amount))

    # apology only: 4 cases, 3 measured, 1 recovered.
    cases += [
        recovery_case(org, people[0], apology, opened_at=opened, outcome="recovered"),
        recovery_case(org, people[1], apology, opened_at=opened, outcome="lost"),
        recovery_case(org, people[2], apology, opened_at=opened, outcome="came_back_unhappy"),
        # Back already, so measured as recovered, but its window runs on: a loss would only be
        # measured at its end, so counting it would count successes alone.
        recovery_case(org, people[3], apology, opened_at=NOW - 5 * DAY, outcome="recovered"),
    ]
    with_spend(people[0], before=["10.00", "12.00"], after=["11.00", "11.50"])  # 11.25 ≥ 11
    with_spend(people[1], before=["9.00"], after=[])  # did not come back: not back
    with_spend(people[2], before=["20.00"], after=["8.00"])  # came back, spent less
    with_spend(people[3], before=["5.00"], after=["50.00"])  # window still running: not counted
    # apology + comp: 5 cases, 5 measured, 4 recovered.
    outcomes = ["recovered", "recovered", "recovered", "recovered", "lost"]
    cases += [
        recovery_case(org, person, comp, opened_at=opened, outcome=outcome)
        for person, outcome in zip(people[4:9], outcomes, strict=True)
    ]
    with_spend(people[4], before=["10.00"], after=["10.00"])  # equal is back
    with_spend(people[5], before=["10.00", "0.00"], after=["15.00"])  # a no-spend visit: ignored
    with_spend(people[6], before=[], after=["15.00"])  # no baseline: not counted
    visits.append(visit(org, people[7], opened - 200 * DAY, spend="10.00"))  # before 90 days
    visits.append(visit(org, people[7], opened + 3 * DAY))  # back, spend unknown
    with_spend(people[8], before=["10.00"], after=[])
    # A case without a variant (no experiment) stays out of the ledger.
    cases.append(recovery_case(org, people[0], comp, opened_at=opened, outcome="recovered"))
    cases[-1].variant = None
    RecoveryCase.objects.bulk_create(cases)
    Episode.objects.bulk_create(visits)

    share_of(1, 2)
    with django_assert_max_num_queries(3):
        ledgers = playbook_ledger(tenant=Tenant(organization=org), now=NOW)
    assert [ledger.name for ledger in ledgers] == ["Order mix-up"]
    ledger = ledgers[0]
    assert ledger.is_running and ledger.cases == 9
    first, second = ledger.variants
    assert (first.name, first.cases) == ("apology only", 4)
    assert (first.recovered.count, first.recovered.n) == (1, 3)
    assert (first.spend_back.count, first.spend_back.n) == (1, 3)
    assert first.versus_first is None and first.sentence == ""
    assert (second.name, second.cases) == ("apology + comp", 5)
    assert (second.recovered.count, second.recovered.n) == (4, 5)
    assert (second.spend_back.count, second.spend_back.n) == (2, 3)
    assert second.versus_first is not None and not second.versus_first.is_enough
    assert second.sentence == (
        "Not enough data yet: 5 apology + comp and 3 apology only; each needs 30."
    )
    # The embedded SQLite's path (no jsonb) agrees with PostgreSQL's statement.
    window = org.recovery_outcome_window
    drawn = RecoveryCase.objects.filter(organization=org, variant__isnull=False)
    ended = (
        drawn.filter(opened_at__lte=NOW - window)
        .order_by()
        .values("id", "variant_id", "customer_id", "opened_at")
    )
    in_sql = _spend_back(drawn, window=window, now=NOW)
    assert in_sql == {apology.pk: (3, 1), comp.pk: (3, 2)}
    assert _spend_back_in_python(ended, window=window) == in_sql


def test_the_ledger_marks_an_ended_experiment_and_its_kept_variant(org, experiment):
    playbook, apology, comp = experiment
    people = CustomerFactory.create_batch(2, organization=org)
    RecoveryCase.objects.bulk_create(
        [
            recovery_case(org, person, v, opened_at=NOW - 40 * DAY)
            for person, v in zip(people, (apology, comp), strict=True)
        ]
    )
    Playbook.objects.filter(pk=playbook.pk).update(experiment_ended_at=NOW, kept_variant=comp)
    (ledger,) = playbook_ledger(tenant=Tenant(organization=org), now=NOW)
    assert not ledger.is_running
    assert [v.is_kept for v in ledger.variants] == [False, True]
    assert playbook_ledger(tenant=Tenant(organization=OrganizationFactory.create()), now=NOW) == []


def test_spend_reads_prices_as_the_narrative_does(org, experiment):
    """Quantity multiplies the price; a line without a price adds nothing."""
    _, apology, _ = experiment
    person = CustomerFactory(organization=org)
    opened = NOW - 40 * DAY
    RecoveryCase.objects.bulk_create([recovery_case(org, person, apology, opened_at=opened)])
    before = visit(org, person, opened - 5 * DAY)
    before.items = [{"name": "Latte", "quantity": 2, "price": "3.50"}, {"name": "Water"}]
    after = visit(org, person, opened + 5 * DAY, spend=Decimal("7.00"))
    Episode.objects.bulk_create([before, after])
    (ledger,) = playbook_ledger(tenant=Tenant(organization=org), now=NOW)
    assert (ledger.variants[0].spend_back.count, ledger.variants[0].spend_back.n) == (1, 1)


def test_care_now_counts_open_worked_care_cases_by_reason_with_the_newest_lines(
    org, django_assert_num_queries
):
    people = CustomerFactory.create_batch(5, organization=org, name="Priya Nair")
    opened = NOW - 3 * DAY
    cases = [
        care_case(org, people[0], opened_at=opened, held_out=False, why_now="Mondays; 3× rhythm"),
        care_case(org, people[1], opened_at=opened + DAY, held_out=False, why_now="drifting"),
        care_case(org, people[2], opened_at=opened, held_out=True),  # held out: never shown
        care_case(org, people[3], opened_at=opened, held_out=False),  # resolved below
        care_case(org, people[4], opened_at=opened - DAY, held_out=False),
    ]
    cases[1].care_reason = "drifting"
    cases[3].status = "resolved"
    RecoveryCase.objects.bulk_create(cases)
    with django_assert_num_queries(2):
        now_ = care_now(tenant=Tenant(organization=org))
    assert (now_.lapsing, now_.drifting) == (2, 1)
    assert [line.why_now for line in now_.newest] == ["drifting", "Mondays; 3× rhythm", ""]
    assert now_.newest[0].first_name == "Priya" and now_.newest[0].care_reason == "drifting"


# --- shown: the insights page and the API ---------------------------------------------------

EVIDENCE = "/api/v1/insights/evidence/"


def page_for(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_insights_page_says_whether_care_works_in_plain_words(owner, holdout_history):
    html = page_for(owner).get("/insights/").content.decode()
    assert "Does care work?" in html and "What works" in html
    assert "Worked 60% vs held out 40% (n=60), no significant difference." in html
    assert "18 of 30; 95% interval 42–75%" in html  # Wilson for 18/30, as computed above
    assert "The interval includes zero" in html
    assert "No playbook runs an experiment yet." in html


def test_the_insights_page_says_not_enough_data_yet_without_cases(owner):
    html = page_for(owner).get("/insights/").content.decode()
    assert "Not enough data yet." in html
    assert "0 worked and 0 held-out care cases have finished their 30-day window" in html


def test_the_insights_page_shows_each_playbook_variant(owner, org, experiment):
    _, apology, comp = experiment
    people = CustomerFactory.create_batch(2, organization=org)
    RecoveryCase.objects.bulk_create(
        [
            recovery_case(org, person, v, opened_at=NOW - 40 * DAY, outcome="recovered")
            for person, v in zip(people, (apology, comp), strict=True)
        ]
    )
    html = page_for(owner).get("/insights/").content.decode()
    assert "Order mix-up" in html and "experiment running" in html
    assert "apology + comp" in html and "1 of 1" in html
    assert "Not enough data yet: 1 apology + comp and 1 apology only; each needs 30." in html


def test_the_api_gives_the_same_figures(api, holdout_history):
    response = api.get(EVIDENCE)
    assert response.status_code == 200, response.content
    data = response.json()
    holdout = data["holdout"]
    assert holdout["worked"]["count"] == 18 and holdout["worked"]["of"] == 30
    assert holdout["held_out"]["value"] == pytest.approx(0.4)
    assert holdout["worked"]["low"] == pytest.approx(0.423204, abs=1e-5)
    assert holdout["comparison"]["enough_data"] is True
    assert holdout["comparison"]["difference"]["low"] == pytest.approx(-0.050028, abs=1e-5)
    assert holdout["comparison"]["difference"]["significant"] is False
    assert holdout["window_days"] == 30 and holdout["holdout_share"] == 10
    assert holdout["sentence"] == "worked 60% vs held out 40% (n=60), no significant difference"
    assert data["playbooks"] == [] and data["min_per_arm"] == MIN_PER_ARM
    assert data["location"] is None
    # Still open, the worked ones (30, the one from before the draws and the one drawn while
    # the holdout was off) are on the queue.
    assert (data["care_now"]["lapsing"], data["care_now"]["drifting"]) == (32, 0)
    assert len(data["care_now"]["newest"]) == 5 and "why_now" in data["care_now"]["newest"][0]


def test_the_api_is_for_owners_managers_and_keys(staff, manager, holdout_history):
    assert page_for(staff).get(EVIDENCE).status_code == 403
    assert page_for(manager).get(EVIDENCE).status_code == 200


def test_the_api_narrows_to_a_location_and_refuses_an_unknown_one(api, main_st, holdout_history):
    data = api.get(EVIDENCE, {"location": main_st.slug}).json()
    assert data["location"] == main_st.slug and data["holdout"]["worked"]["of"] == 30
    response = api.get(EVIDENCE, {"location": "nowhere"})
    assert response.status_code == 404 and "location" in response.content.decode()
    assert api.get(EVIDENCE, {"location": "not a slug!"}).status_code == 400


def test_another_organization_sees_none_of_it(outsider_api, holdout_history):
    data = outsider_api.get(EVIDENCE).json()
    assert data["holdout"]["worked"]["of"] == 0 and data["holdout"]["held_out"]["of"] == 0


def test_the_demo_history_gives_every_figure_a_result(org, main_st, playbooks):
    # A fifth held out rather than the default tenth: half the rounds, the same paths.
    org.care_holdout_share = 20
    org.save(update_fields=["care_holdout_share"])
    now = timezone.now()
    seeded = seed_evidence(organization=org, location=main_st, now=now, rng=random.Random(7))
    assert seeded.worked >= MIN_PER_ARM and seeded.held_out >= MIN_PER_ARM
    figures = evidence(tenant=Tenant(organization=org), now=now)
    holdout = figures.holdout
    assert holdout.comparison.is_enough, holdout.sentence
    assert holdout.worked.n >= MIN_PER_ARM and holdout.held_out.n >= MIN_PER_ARM
    (ledger,) = figures.playbooks
    assert ledger.name == "Order mix-up" and ledger.is_running
    first, second = ledger.variants
    assert second.versus_first is not None and second.versus_first.is_enough, second.sentence
    assert first.spend_back.n >= MIN_PER_ARM and second.spend_back.n >= MIN_PER_ARM
    assert "Not enough data" not in second.sentence
    # Lived through the real paths: the narratives agree with their episodes.
    for customer in Customer.objects.filter(organization=org).order_by("?")[:40]:
        assert NarrativeState.of(customer) == narrative_from_episodes(customer.pk)
    # Nobody from the demo cohorts is left lapsing on the queue.
    assert not RecoveryCase.objects.filter(kind="care", status="open", held_out=False).exists()

"""Randomised holdouts for care (issue 16): a recorded, reproducible draw holds out a share of
care cases, which are kept and measured but never worked; recovery cases never are."""

from datetime import timedelta
from math import sqrt

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import Membership
from accounts.tenancy import Tenant
from cxcore.models import Customer
from recovery import lifecycle
from recovery.digests import send_daily_digests
from recovery.escalation import escalate_overdue, notify_escalations
from recovery.models import CaseKind, RecoveryCase
from recovery.reminders import remind_of_reservation
from recovery.sidebar import customer_sidebar, till_cases
from recovery.sweep import sweep_care, sweep_recovery
from tests.factories import CustomerFactory
from tests.recovery.conftest import T0, log
from webhooks.models import WebhookEvent

LAPSED = T0 + timedelta(days=120)  # long past every regular's rhythm below


def lapsing_regulars(org, n: int) -> list[Customer]:
    """`n` weekly regulars of six visits, the last 100 days before LAPSED, written as rows
    (the sweep reads the narrative state on the row): their care is due."""
    first, last = T0 - timedelta(weeks=5), T0 + timedelta(days=20)
    return Customer.objects.bulk_create(
        Customer(
            organization=org,
            name=f"Regular {i}",
            visit_count=6,
            episode_count=6,
            first_seen_at=first,
            first_visit_at=first,
            last_visit_at=last,
            care_due_at=last + timedelta(weeks=3),
        )
        for i in range(n)
    )


def set_share(org, share: int) -> None:
    org.care_holdout_share = share
    org.save(update_fields=["care_holdout_share"])


def binomial_bounds(n: int, p: float, sds: float = 5.0) -> tuple[float, float]:
    """n·p ± 5 standard deviations: a correct draw falls outside about once in 3.5 million."""
    mean, sd = n * p, sqrt(n * p * (1 - p))
    return mean - sds * sd, mean + sds * sd


# --- the draw itself (no database) ----------------------------------------------------------


def test_the_draw_holds_out_the_share_asked_for_over_many_seeds():
    n = 20_000
    for share in (1, 10, 25, 50):
        held = sum(
            lifecycle.draw(seed, kind=CaseKind.CARE, holdout_share=share, variant_ids=()).held_out
            for seed in range(n)
        )
        low, high = binomial_bounds(n, share / 100)
        assert low <= held <= high, (share, held)


def test_a_zero_share_holds_out_nothing_and_recovery_is_never_held_out():
    for seed in range(5_000):
        assert not lifecycle.draw(
            seed, kind=CaseKind.CARE, holdout_share=0, variant_ids=()
        ).held_out
        assert not lifecycle.draw(
            seed, kind=CaseKind.RECOVERY, holdout_share=50, variant_ids=(7, 8)
        ).held_out


def test_the_same_seed_draws_the_same_and_a_held_out_case_gets_no_variant():
    for seed in range(2_000):
        first = lifecycle.draw(seed, kind=CaseKind.CARE, holdout_share=30, variant_ids=(1, 2, 3))
        again = lifecycle.draw(seed, kind=CaseKind.CARE, holdout_share=30, variant_ids=(1, 2, 3))
        assert first == again
        assert (first.variant_id is None) == first.held_out


def test_seeds_fit_a_signed_bigint_and_differ_by_customer_and_time():
    seeds = {
        lifecycle.draw_seed(organization_id=1, customer_id=c, opened_at=T0 + timedelta(minutes=m))
        for c in range(100)
        for m in range(10)
    }
    assert len(seeds) == 1000
    assert all(0 <= s < 2**63 for s in seeds)


# --- care cases in the sweep ----------------------------------------------------------------


def test_the_sweep_holds_out_about_the_share_of_lapsing_regulars(org, playbooks):
    set_share(org, 30)
    n = 600
    lapsing_regulars(org, n)
    assert sweep_care(now=LAPSED).opened == n
    held = RecoveryCase.objects.filter(kind=CaseKind.CARE, held_out=True).count()
    low, high = binomial_bounds(n, 0.3)
    assert low <= held <= high
    # Every one of them is still the customer's open care case, worked or not.
    assert RecoveryCase.objects.open().filter(kind=CaseKind.CARE).count() == n


def test_every_recorded_draw_replays_from_its_seed(org, playbooks):
    set_share(org, 40)
    lapsing_regulars(org, 200)
    sweep_care(now=LAPSED)
    cases = list(RecoveryCase.objects.all())
    assert (
        len(cases) == 200 and any(c.held_out for c in cases) and not all(c.held_out for c in cases)
    )
    for case in cases:
        assert case.draw_seed == lifecycle.draw_seed(
            organization_id=org.pk, customer_id=case.customer_id, opened_at=case.opened_at
        )
        share = lifecycle.holdout_share_for(
            kind=case.kind, care_reason=case.care_reason, holdout_share=40
        )
        drawn = lifecycle.draw(case.draw_seed, kind=case.kind, holdout_share=share, variant_ids=())
        assert (drawn.held_out, drawn.variant_id) == (case.held_out, case.variant_id)


def test_a_zero_share_holds_out_no_care_case(org, playbooks):
    set_share(org, 0)
    lapsing_regulars(org, 150)
    sweep_care(now=LAPSED)
    assert RecoveryCase.objects.filter(held_out=True).count() == 0
    assert RecoveryCase.objects.filter(draw_seed__isnull=True).count() == 0


def test_a_held_out_case_is_recorded_with_its_reason_but_nothing_to_do(org, playbooks):
    set_share(org, 50)
    lapsing_regulars(org, 40)
    sweep_care(now=LAPSED)
    held = RecoveryCase.objects.filter(held_out=True).first()
    worked = RecoveryCase.objects.filter(held_out=False).first()
    assert held is not None and worked is not None
    assert held.care_reason == worked.care_reason == "lapsing"
    assert not held.show_at_visit and held.escalate_at is None and held.actions.count() == 0
    assert held.outcome_due_at is not None  # measured like any other: the comparison
    assert worked.show_at_visit and worked.escalate_at is not None and worked.actions.exists()
    assert held.events.get(type="opened").data == {"held_out": True}


# --- recovery is never held out -------------------------------------------------------------


def test_no_recovery_path_ever_holds_out_a_case(org, main_st, playbooks):
    """Grace passed, a late report joining the open case, and a second failure reopening a
    resolved one (every way the sweep opens or reopens a recovery case; the draw itself
    refuses to hold out any recovery case, tested above): at the largest share, none."""
    set_share(org, 50)
    people = [CustomerFactory.create(organization=org, name=f"Guest {i}") for i in range(40)]
    for person in people:
        log(org, person, T0, kind="complaint", experience=-2, location=main_st,
            touchpoints=[{"code": "wait", "third_party": False}])  # fmt: skip
    assert sweep_recovery(now=T0 + timedelta(hours=3)).opened == 40  # grace passed
    for person in people[:10]:  # a late report of the same visit joins the case
        log(org, person, T0 - timedelta(minutes=5), kind="feedback", experience=-1)
    for person in people[10:30]:  # put right, then a second failure soon after
        log(org, person, T0 + timedelta(hours=4), kind="recovery", summary="Apologised")
    sweep_recovery(now=T0 + timedelta(hours=5))
    for person in people[10:30]:
        log(org, person, T0 + timedelta(days=2), kind="complaint", experience=-1)
    result = sweep_recovery(now=T0 + timedelta(days=2, minutes=1))
    assert result.reopened == 20
    cases = RecoveryCase.objects.filter(kind=CaseKind.RECOVERY)
    assert cases.count() == 40
    assert not cases.filter(held_out=True).exists()
    assert not cases.filter(draw_seed__isnull=True).exists()
    # The draw ran (its seed is recorded) and, replayed, holds nothing out for recovery.
    for case in cases:
        assert case.draw_seed is not None
        replay = lifecycle.draw(case.draw_seed, kind=case.kind, holdout_share=50, variant_ids=())
        assert not replay.held_out
    tenant = Tenant(organization=org)
    assert all(customer_sidebar(tenant=tenant, customer_id=p.pk, location=None).prompts
               for p in people)  # fmt: skip


# --- held out means nobody works it ---------------------------------------------------------


@pytest.fixture
def held_and_worked(org, playbooks):
    set_share(org, 50)
    lapsing_regulars(org, 40)
    sweep_care(now=LAPSED)
    held = RecoveryCase.objects.filter(held_out=True).select_related("customer").first()
    worked = RecoveryCase.objects.filter(held_out=False).select_related("customer").first()
    assert held is not None and worked is not None
    return held, worked


def test_a_held_out_case_is_never_prompted_at_the_till(org, held_and_worked):
    held, worked = held_and_worked
    tenant = Tenant(organization=org)
    assert (
        customer_sidebar(tenant=tenant, customer_id=held.customer_id, location=None).prompts == []
    )
    prompts = customer_sidebar(tenant=tenant, customer_id=worked.customer_id, location=None).prompts
    assert [p.case.pk for p in prompts] == [worked.pk]
    # Nor can the till act on it.
    assert not till_cases(tenant).filter(pk=held.pk).exists()
    assert till_cases(tenant).filter(pk=worked.pk).exists()


def test_a_held_out_case_is_not_on_the_queue(owner, held_and_worked):
    held, worked = held_and_worked
    client = Client()
    client.force_login(owner)
    page = client.get(reverse("queue"), {"kind": "care"}).content.decode()
    assert f'id="case-{worked.pk}"' in page
    assert f'id="case-{held.pk}"' not in page


def test_a_held_out_case_is_not_in_the_api_queue(org_key, held_and_worked):
    from tests.conftest import key_client

    held, worked = held_and_worked
    body = key_client(org_key).get("/api/v1/cases/", {"kind": "care"}).json()
    ids = {c["id"] for c in body["results"]}
    assert worked.pk in ids and held.pk not in ids


def test_a_held_out_case_is_not_in_the_digest(settings, org, owner, held_and_worked):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    held, worked = held_and_worked
    Membership.objects.filter(user=owner).update(daily_digest=True)
    # The digest's morning in London: the cases opened within the day before.
    morning = LAPSED.replace(hour=7, minute=10) + timedelta(days=1)
    RecoveryCase.objects.update(opened_at=morning - timedelta(hours=2))
    assert send_daily_digests(now=morning) == 1
    body = mail.outbox[0].body
    assert f"- {worked.customer.name} (care" in body
    assert f"- {held.customer.name} (care" not in body


def test_a_held_out_case_never_escalates_or_emails(settings, org, owner, held_and_worked):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    held, worked = held_and_worked
    # Even a held-out row that somehow kept an escalation clock is passed over.
    RecoveryCase.objects.filter(pk=held.pk).update(escalate_at=held.opened_at)
    escalate_overdue(now=LAPSED + timedelta(days=30))
    held.refresh_from_db()
    worked.refresh_from_db()
    assert held.escalated_at is None and worked.escalated_at is not None
    RecoveryCase.objects.filter(pk=held.pk).update(escalated_at=LAPSED)
    notify_escalations(now=LAPSED.replace(hour=12) + timedelta(days=30))
    held.refresh_from_db()
    assert held.escalation_notified_at is None


def test_a_booking_does_not_remind_anyone_of_a_held_out_case(org, held_and_worked):
    held, worked = held_and_worked
    for case, expected in ((held, None), (worked, worked.pk)):
        booking = log(org, case.customer, LAPSED + timedelta(hours=1), kind="reservation",
                      summary="Table for 2, Sat 19:00")  # fmt: skip
        reminder = remind_of_reservation(episode_id=booking.pk, now=LAPSED + timedelta(hours=1))
        assert (reminder.case_id if reminder else None) == expected


def test_no_webhook_tells_a_till_of_a_held_out_case(org, held_and_worked):
    held, worked = held_and_worked
    opened = WebhookEvent.objects.filter(type="care.opened")
    ids = {e.data["case"]["id"] for e in opened}
    assert worked.pk in ids and held.pk not in ids


def test_a_held_out_case_stays_the_one_open_care_case_and_resolves_when_they_return(
    org, held_and_worked
):
    held, _ = held_and_worked
    assert sweep_care(now=LAPSED + timedelta(days=60)).opened == 0
    assert RecoveryCase.objects.filter(customer=held.customer, kind=CaseKind.CARE).count() == 1
    back = log(org, held.customer, LAPSED + timedelta(days=61), kind="visit")
    assert sweep_care(now=back.occurred_at + timedelta(minutes=1)).resolved >= 1
    held.refresh_from_db()
    assert held.status == "resolved" and held.held_out
    assert held.outcome_due_at is not None  # measured, in the comparison


# --- the settings ---------------------------------------------------------------------------


def settings_form(org, **changes) -> dict:
    data = {
        "name": org.name, "country": org.country, "time_zone": org.time_zone,
        "recovery_grace_period": "2", "recovery_outcome_window": "30", "care_min_visits": "5",
        "care_gap_factor": "3.0", "quiet_hours_start": "22", "quiet_hours_end": "7",
        "high_spender_spend": "500.00", "text_retention_days": "",
        "care_holdout_share": "10", "drift_window": "3", "drift_drop": "2",
    }  # fmt: skip
    return data | changes


def test_the_owner_sets_the_holdout_share_and_the_drift_rule(owner, org):
    client = Client()
    client.force_login(owner)
    page = client.get("/settings/").content.decode()
    for name in ("care_holdout_share", "drift_window", "drift_drop"):
        assert f'name="{name}"' in page
    response = client.post(
        "/settings/", settings_form(org, care_holdout_share="0", drift_window="4", drift_drop="1")
    )
    assert response.status_code == 302
    org.refresh_from_db()
    assert (org.care_holdout_share, org.drift_window, org.drift_drop) == (0, 4, 1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("care_holdout_share", "51"),
        ("care_holdout_share", "-1"),
        ("care_holdout_share", "ten"),
        ("drift_window", "1"),
        ("drift_window", "11"),
        ("drift_drop", "0"),
        ("drift_drop", "3"),
    ],
)
def test_a_setting_out_of_range_is_a_400_naming_it(owner, org, field, value):
    client = Client()
    client.force_login(owner)
    before = (org.care_holdout_share, org.drift_window, org.drift_drop)
    response = client.post("/settings/", settings_form(org, **{field: value}))
    assert response.status_code == 400
    assert f'id="id_{field}_error"' in response.content.decode()
    org.refresh_from_db()
    assert (org.care_holdout_share, org.drift_window, org.drift_drop) == before


# --- care reasons at the sweep (drift, why now) ----------------------------------------------


def regular_with(org, experiences: list[int | None], name: str = "Grace Hopper"):
    """A weekly regular of eight visits whose last ones carry `experiences` (oldest first)."""
    customer = CustomerFactory.create(organization=org, name=name)
    padded = [None] * (8 - len(experiences)) + experiences
    for week, experience in enumerate(padded):
        log(org, customer, T0 + timedelta(weeks=week), kind="visit", experience=experience)
    customer.refresh_from_db()
    return customer


def look_now(customer, now) -> None:
    """What the episode write path does when an experience slides (see the request to the
    cxcore owner): the care sweep looks at the customer now."""
    Customer.objects.filter(pk=customer.pk).update(care_due_at=now)


def test_a_drifting_regular_gets_a_care_case_saying_so(org, playbooks):
    set_share(org, 0)
    grace = regular_with(org, [2, 1, 0])
    now = grace.last_visit_at + timedelta(days=1)  # not lapsing: last here yesterday
    look_now(grace, now)
    assert sweep_care(now=now).opened == 1
    case = RecoveryCase.objects.get()
    assert (case.kind, case.care_reason) == ("care", "drifting")
    assert "drifting +2 → +1 → 0" in case.why_now and len(case.why_now) <= 120
    assert case.events.get(type="opened").data == {}
    prompt = customer_sidebar(tenant=Tenant(organization=org), customer_id=grace.pk, location=None)
    assert prompt.prompts[0].why_now == case.why_now
    assert case.why_now in prompt.prompts[0].what_happened


@pytest.mark.parametrize("experiences", [[2, 2, 1], [2, 0, -1], [0, 1, 0], [1]])
def test_a_regular_who_is_not_drifting_gets_no_care_case(org, playbooks, experiences):
    set_share(org, 0)
    grace = regular_with(org, experiences)
    now = grace.last_visit_at + timedelta(days=1)
    look_now(grace, now)
    assert sweep_care(now=now).opened == 0
    grace.refresh_from_db()
    # The lapse due time again (3 × a weekly rhythm), not stuck in the past.
    assert grace.care_due_at == grace.last_visit_at + timedelta(weeks=3)


def test_the_drift_rule_follows_the_organizations_settings(org, playbooks):
    set_share(org, 0)
    org.drift_window, org.drift_drop = 2, 1
    org.save(update_fields=["drift_window", "drift_drop"])
    grace = regular_with(org, [2, 1])
    now = grace.last_visit_at + timedelta(days=1)
    look_now(grace, now)
    assert sweep_care(now=now).opened == 1
    assert RecoveryCase.objects.get().why_now.count("→") == 1


def test_a_lapsing_regulars_case_says_why_now_on_the_queue_and_case_page(org, owner, playbooks):
    set_share(org, 0)
    grace = regular_with(org, [1])
    now = grace.last_visit_at + timedelta(weeks=5)
    assert sweep_care(now=now).opened == 1
    case = RecoveryCase.objects.get()
    assert case.care_reason == "lapsing"
    assert "35 days absent" in case.why_now and "5× their rhythm" in case.why_now
    client = Client()
    client.force_login(owner)
    assert case.why_now in client.get(reverse("queue")).content.decode()
    assert case.why_now in client.get(reverse("case-page", args=[case.pk])).content.decode()


def test_a_drifting_regular_is_never_held_out(org, playbooks):
    """Only lapsing regulars are the holdout's population: a drifting one still comes in, so
    holding them out would withhold care and measure nothing."""
    set_share(org, 50)
    people = [regular_with(org, [2, 1, 0], name=f"Drifter {i}") for i in range(12)]
    now = max(p.last_visit_at for p in people) + timedelta(days=1)
    for person in people:
        look_now(person, now)
    assert sweep_care(now=now).opened == 12
    cases = RecoveryCase.objects.all()
    assert {c.care_reason for c in cases} == {"drifting"}
    assert not cases.filter(held_out=True).exists()
    for case in cases:
        assert case.draw_seed is not None
        share = lifecycle.holdout_share_for(
            kind=case.kind, care_reason=case.care_reason, holdout_share=50
        )
        assert share == 0
        assert not lifecycle.draw(case.draw_seed, kind=case.kind, holdout_share=share,
                                  variant_ids=()).held_out  # fmt: skip

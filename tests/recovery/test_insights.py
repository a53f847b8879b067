"""Insights on a constructed history where the right answers are known by hand."""

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from recovery.models import RecoveryCase
from recovery.outcomes import measure_outcomes
from recovery.services import Actor, acknowledge_case, dismiss_case, resolve_case
from recovery.sweep import sweep_recovery
from recovery.templatetags.recovery_tags import (
    HEAT_STEPS,
    contrast,
    heat_colours,
    heat_stylesheet,
)
from tests.factories import CustomerFactory
from tests.recovery.conftest import log

STATIC = Path(__file__).resolve().parents[2] / "static"

INSIGHTS = "/api/v1/insights/summary/"


@pytest.fixture
def history(org, main_st, harbour):
    now = timezone.now()
    t0 = now - timedelta(days=20)
    ann, ben, cat = (CustomerFactory(organization=org, name=n) for n in ("Ann", "Ben", "Cat"))
    log(org, ann, t0, kind="complaint", experience=-2, location=main_st,
        touchpoints=[{"code": "order_accuracy", "third_party": False}])  # fmt: skip
    log(org, ben, t0, kind="feedback", experience=-1, location=main_st,
        touchpoints=[{"code": "wait", "third_party": False}])  # fmt: skip
    log(org, cat, t0, kind="incident", experience=-1, location=harbour,
        touchpoints=[{"code": "parking_valet", "third_party": True}])  # fmt: skip
    log(org, cat, now - timedelta(days=60), kind="complaint", experience=-1)  # before the period
    sweep_recovery(now=t0 + timedelta(hours=3))
    cases = {c.customer.name: c for c in RecoveryCase.objects.select_related("customer")}
    opened = cases["Ann"].opened_at
    acknowledge_case(case=cases["Ann"], actor=Actor(), now=opened + timedelta(hours=1))  # in SLA
    resolve_case(case=cases["Ann"], now=opened + timedelta(hours=5))  # in the 2-day SLA
    resolve_case(case=cases["Ben"], now=opened + timedelta(days=3))  # late
    dismiss_case(case=cases["Cat"], reason="no contact", now=opened + timedelta(hours=2))
    log(org, ann, opened + timedelta(days=4), kind="visit", experience=1)  # came back happy
    log(org, cat, opened + timedelta(days=6), kind="visit")  # came back without a follow-up
    measure_outcomes(now=opened + timedelta(days=7))  # Ann recovered; Cat came back
    measure_outcomes(now=opened + timedelta(days=40))  # Ben lost (window over)
    return cases


def test_the_summary_counts_what_happened(api, history):
    data = api.get(INSIGHTS).json()
    assert data["negative_experiences"] == 3
    assert data["negative_by_touchpoint"] == {"order_accuracy": 1, "wait": 1}
    assert data["negative_by_third_party_touchpoint"] == {"parking_valet": 1}
    assert data["negative_by_location"] == {"Main St": 2, "Harbour Rd": 1}
    assert data["heat_map"]["parking_valet"] == {"Harbour Rd": 1}
    assert data["cases_opened"] == 3
    assert data["acknowledged_within_sla"] == {"value": 0.333, "of": 3, "count": 1}
    assert data["resolved_within_sla"] == {"value": 0.333, "of": 3, "count": 1}
    assert data["median_hours_to_acknowledge"] == 1.0
    assert data["median_hours_to_resolve"] == 38.5  # median of 5 h and 72 h


def test_recovery_is_measured_by_what_customers_did(api, history):
    data = api.get(INSIGHTS).json()
    # followed up: Ann recovered, Ben lost → recovery rate 1/2, came back 1/2
    assert data["recovery_rate"] == {"value": 0.5, "of": 2, "count": 1}
    assert data["return_rate_followed_up"] == {"value": 0.5, "of": 2, "count": 1}
    # not followed up: Cat (dismissed) came back → 1/1
    assert data["return_rate_not_followed_up"] == {"value": 1.0, "of": 1, "count": 1}
    assert data["lift"] == -0.5


def test_a_location_narrows_the_figures(api, history):
    data = api.get(INSIGHTS, {"location": "harbour-rd"}).json()
    assert data["negative_experiences"] == 1 and data["cases_opened"] == 1


def test_bad_periods_name_the_field(api, history):
    assert api.get(INSIGHTS, {"from": "2026-13-01"}).json()["errors"][0]["field"] == "from"
    response = api.get(INSIGHTS, {"from": "2026-05-02", "to": "2026-05-01"})
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "from"


def test_staff_do_not_see_insights_and_outsiders_see_only_their_own(staff, outsider_api, history):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(staff)
    assert client.get(INSIGHTS).status_code == 403
    assert outsider_api.get(INSIGHTS).json()["negative_experiences"] == 0


def test_the_insights_page_shows_the_figures_with_charts_and_tables(owner, history):
    from django.test import Client

    client = Client()
    client.force_login(owner)
    body = client.get("/insights/").content.decode()
    assert "<svg" in body and "Negative experiences by touchpoint" in body
    assert "<td>Order accuracy</td><td>1</td>" in body  # the chart's table view, by label
    assert "came back when followed up" in body and "(1 of 2)" in body
    assert client.get("/insights/", {"location": "nowhere"}).status_code == 404


def test_staff_get_the_403_page_for_insights(staff, history):
    from django.test import Client

    client = Client()
    client.force_login(staff)
    response = client.get("/insights/")
    assert response.status_code == 403
    assert "This page is for owners and managers." in response.content.decode()


def test_shown_not_acted_on_means_a_showing_nobody_acted_on_since(org, main_st, owner):
    """Acknowledge, not now, resolve or dismiss after the showing all count as acting; a
    showing after the last action, with nothing since, is flagged; closed cases never are."""
    from django.utils import timezone

    from recovery.events import Actor
    from recovery.models import RecoveryCase
    from recovery.services import (
        acknowledge_case,
        not_now,
        record_prompts_shown,
        resolve_case,
    )
    from recovery.sweep import sweep_recovery
    from tests.factories import CustomerFactory
    from tests.recovery.conftest import log

    now = timezone.now()
    people = [CustomerFactory.create(organization=org, name=f"Guest {i}") for i in range(4)]
    for person in people:
        log(org, person, now - timedelta(hours=5), kind="complaint", experience=-1)
    sweep_recovery(now=now)
    cases = {c.customer_id: c for c in RecoveryCase.objects.filter(customer__in=people)}
    ignored, deferred, closed, acked_then_shown = (cases[p.pk] for p in people)
    till = Actor(location=main_st)
    record_prompts_shown(cases=list(cases.values()), actor=till, now=now)
    not_now(case=deferred, actor=till, now=now + timedelta(seconds=5))
    resolve_case(case=closed, note="Sorted at the till", actor=till, now=now + timedelta(seconds=5))
    acknowledge_case(case=acked_then_shown, actor=till, now=now - timedelta(minutes=1))

    flagged = set(RecoveryCase.objects.shown_not_acted_on().values_list("pk", flat=True))
    assert flagged == {ignored.pk, acked_then_shown.pk}
    assert all(RecoveryCase.objects.get(pk=pk).is_shown_not_acted_on for pk in flagged)
    assert not RecoveryCase.objects.get(pk=closed.pk).is_shown_not_acted_on


# --- the insights page reads like a person wrote it ----------------------------------------


def page(user, **params) -> tuple[int, str]:
    client = Client()
    client.force_login(user)
    response = client.get("/insights/", params)
    return response.status_code, response.content.decode()


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def test_touchpoints_are_shown_by_their_labels(owner, history):
    _, body = page(owner)
    assert "<td>Order accuracy</td><td>1</td>" in body and "<td>Wait</td><td>1</td>" in body
    assert "<td>Parking / valet</td><td>1</td>" in body  # the partners' chart
    heat = body.split('class="table heat"')[1].split("</table>")[0]
    assert '<th scope="row">Parking / valet</th>' in heat and "parking_valet" not in heat


def test_weeks_are_labelled_and_empty_weeks_are_zero(owner, history):
    today = timezone.localdate()
    start = today - timedelta(days=34)
    _, body = page(owner, **{"from": start.isoformat(), "to": today.isoformat()})
    table = body.split("Recovery cases opened</th></tr></thead>")[1].split("</table>")[0]
    weeks = re.findall(r"<tr><td>(w/c [^<]+)</td><td>(\d+)</td><td>(\d+)</td></tr>", table)
    first = monday(start)
    expected = [first + timedelta(weeks=n) for n in range((monday(today) - first).days // 7 + 1)]
    assert [label for label, _, _ in weeks] == [f"w/c {d.day} {d:%b}" for d in expected]
    negatives = {label: int(n) for label, n, _ in weeks}
    opened = {label: int(n) for label, _, n in weeks}
    t0 = timezone.localtime(timezone.now() - timedelta(days=20)).date()
    busy = f"w/c {monday(t0).day} {monday(t0):%b}"
    assert negatives[busy] == 3 and opened[busy] == 3
    assert sum(negatives.values()) == 3 and list(negatives.values()).count(0) == len(weeks) - 1
    assert "<svg" in body and 'class="line neg"' in body and 'class="line opened"' in body


def test_the_api_keeps_its_weeks_by_iso_week(api, history):
    t0 = timezone.localtime(timezone.now() - timedelta(days=20)).date()
    year, week, _ = t0.isocalendar()
    assert api.get(INSIGHTS).json()["negative_by_week"] == {f"{year}-W{week:02d}": 3}


def test_the_page_takes_the_apis_parameters(owner, history):
    today = timezone.localdate()
    status, body = page(owner, **{"from": (today - timedelta(days=5)).isoformat()})
    assert status == 200
    assert re.search(r'<span class="n">0</span> negative experiences', body)  # t0 is before
    assert f'name="from" value="{(today - timedelta(days=5)).isoformat()}"' in body
    assert f'name="to" value="{today.isoformat()}"' in body


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"from": "2026-05-02", "to": "2026-05-01"}, "Must not be after"),
        ({"from": "2024-01-01", "to": "2026-05-01"}, "At most a year"),
        ({"from": "2026-13-01"}, "Enter a valid date"),
        ({"from": "0001-01-01", "to": "0001-01-02"}, "Must be between 2000-01-01"),
    ],
)
def test_a_bad_period_is_said_on_the_field_like_the_api(owner, history, params, says):
    status, body = page(owner, **params)
    assert status == 400
    field = body.split('name="from"')[1].split(">")[0]
    assert 'aria-invalid="true"' in field and 'aria-describedby="from-error"' in field
    assert says in body.split('id="from-error">')[1].split("</span>")[0]
    assert re.search(r'<span class="n">3</span> negative experiences', body)  # the last 30 days


def test_a_median_under_an_hour_reads_less_than_one_hour(owner, org, main_st):
    at = timezone.now() - timedelta(days=3)
    for name in ("Dee", "Eve"):
        customer = CustomerFactory(organization=org, name=name)
        log(org, customer, at, kind="complaint", experience=-1, location=main_st)
    sweep_recovery(now=at + timedelta(hours=3))
    for case in RecoveryCase.objects.all():
        acknowledge_case(case=case, actor=Actor(), now=case.opened_at + timedelta(minutes=20))
    _, body = page(owner)
    assert "(2 of 2; median &lt; 1 h)" in body
    assert "median — h" not in body and "median None" not in body


def test_no_median_yet_reads_nothing_rather_than_a_dash(owner, org):
    _, body = page(owner)
    assert "(0 of 0)" in body and "median" not in body


@pytest.mark.parametrize("share", [i / 200 for i in range(201)])
def test_heat_map_text_contrasts_at_least_4_5_to_1_at_every_share(share):
    background, text = heat_colours(share)
    assert contrast(background, text) >= 4.5


def test_the_heat_map_cells_carry_their_colours(owner, history):
    _, body = page(owner)
    heat = body.split('class="table heat"')[1].split("</table>")[0]
    steps = [int(step) for step in re.findall(r'<td class="heat-(\d+)">', heat)]
    assert steps and 0 in steps and 100 in steps  # an empty cell, and the largest
    assert 'style="' not in heat  # the colours come from heat.css: the CSP refuses style=""
    css = (STATIC / "css" / "heat.css").read_text()
    assert ".heat .heat-0 { background:#ffffff; color:#000000; }" in css  # black on white
    assert ".heat .heat-100 { background:#a3341a; color:#ffffff; }" in css


def test_the_heat_stylesheet_is_the_one_the_colours_make():
    """static/css/heat.css is written by heat_stylesheet(): a change to the scale fails here
    until the file is rewritten (the command is in heat_stylesheet's docstring)."""
    assert (STATIC / "css" / "heat.css").read_text() == heat_stylesheet()
    for step in range(HEAT_STEPS + 1):
        background, text = heat_colours(step / HEAT_STEPS)
        assert contrast(background, text) >= 4.5

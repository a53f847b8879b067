"""Insights' evidence in a real browser, at 390 px and 1366 px: "Does care work?" with a
difference and its interval, "What works" with a playbook's variants side by side, and "not
enough data yet" before there is any. Screenshots in test-artifacts/; axe-core reports no
serious or critical violation; nothing is wider than the screen."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cxcore.models import Episode
from recovery.models import Playbook, PlaybookVariant, RecoveryCase
from tests.browser.test_queue import fits_the_width, log_in
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
DAY = timedelta(days=1)


@pytest.fixture
def page(sized_page):
    return sized_page


def case(org, customer, *, kind, opened_at, **fields):
    return RecoveryCase(
        organization=org,
        customer=customer,
        kind=kind,
        status="resolved",
        severity=1,
        opened_at=opened_at,
        ack_due_at=opened_at + DAY,
        due_at=opened_at + 2 * DAY,
        draw_seed=1,
        holdout_share=10,  # drawn while the holdout was on
        **fields,
    )


@pytest.fixture
def evidence_history(org, main_st):
    """40 worked care cases (26 back) and 40 held out (14 back), their window over; and an
    order mix-up playbook whose two variants each have 36 measured cases."""
    now = timezone.now()
    opened = now - 45 * DAY
    people = CustomerFactory.create_batch(154, organization=org)
    cases, visits = [], []
    for i, person in enumerate(people[:80]):
        held = i >= 40
        cases.append(case(org, person, kind="care", opened_at=opened, held_out=held))
        if (i % 40) < (14 if held else 26):
            visits.append(
                Episode(organization=org, customer=person, kind="visit",
                        occurred_at=opened + (3 + i % 20) * DAY, location=main_st)
            )  # fmt: skip
    playbook = Playbook.objects.create(organization=org, name="Order mix-up", position=1)
    variants = [
        PlaybookVariant.objects.create(
            organization=org,
            playbook=playbook,
            name=name,
            actions=[name],
            position=position,
            created_at=now - 90 * DAY,
        )
        for position, name in enumerate(("Apology by name", "Apology + comp their usual"))
    ]
    for i, person in enumerate(people[80:152]):
        variant = variants[i % 2]
        recovered = (i // 2) < (22 if i % 2 == 0 else 29)
        cases.append(
            case(org, person, kind="recovery", opened_at=opened, playbook=playbook,
                 variant=variant, outcome="recovered" if recovered else "lost")
        )  # fmt: skip
        for days, price in ((-20, "6.80"), (10, "6.80" if i % 3 else "3.40")):
            visits.append(
                Episode(organization=org, customer=person, kind="order",
                        occurred_at=opened + days * DAY, location=main_st,
                        items=[{"name": "Flat white", "quantity": 2, "price": price}])
            )  # fmt: skip
    # Two on the queue now, each saying why (their windows have not ended: not counted above).
    for person, reason, why in (
        (people[152], "lapsing", "Mon/Wed/Fri for 8 months; 12 days absent, 4× their rhythm"),
        (
            people[153],
            "drifting",
            "Saturdays for 5 months; last here 3 days ago; drifting +2 → +1 → 0",
        ),
    ):
        person.name = "Priya Nair" if reason == "lapsing" else "Tom Reid"
        person.save(update_fields=["name"])
        days = 1 if reason == "lapsing" else 2  # Priya the newer
        cases.append(
            case(org, person, kind="care", opened_at=now - days * DAY, held_out=False,
                 care_reason=reason, why_now=why)
        )  # fmt: skip
        cases[-1].status = "open"
    RecoveryCase.objects.bulk_create(cases)
    Episode.objects.bulk_create(visits)


def test_insights_say_whether_care_works_and_what_works(
    live_server, page, screenshot, axe, owner, evidence_history
):
    log_in(page, live_server.url, owner, "/insights/")
    care = page.locator("section[aria-labelledby=care-works]")
    care.scroll_into_view_if_needed()
    text = care.inner_text()
    assert "1 gone quiet (far past their usual rhythm) and 1 drifting" in text
    lines = care.locator("ul.why-now li")
    assert lines.nth(0).inner_text().startswith("Priya — Mon/Wed/Fri for 8 months")
    assert "Tom (drifting) — Saturdays for 5 months" in lines.nth(1).inner_text()
    href = care.get_by_role("link", name="Tom").get_attribute("href") or ""
    assert href.startswith("/recovery/cases/")
    kpis = care.locator(".kpi")
    assert "65%" in kpis.nth(0).inner_text() and "came back when worked" in kpis.nth(0).inner_text()
    assert (
        "35%" in kpis.nth(1).inner_text() and "14 of 40; 95% interval" in kpis.nth(1).inner_text()
    )
    assert (
        "+30" in kpis.nth(2).inner_text() and "points that care brings" in kpis.nth(2).inner_text()
    )
    assert "Worked 65% vs held out 35% (n=80): worked ahead by 30 points" in text
    assert "Care brings regulars back" in text

    works = page.locator("section[aria-labelledby=what-works]")
    table = works.get_by_role("region", name="Order mix-up: variants compared")
    assert table.is_visible()
    rows = table.locator("tbody tr")
    assert rows.count() == 2
    assert "Apology + comp their usual" in rows.nth(1).inner_text()
    assert "29 of 36" in rows.nth(1).inner_text() and "22 of 36" in rows.nth(0).inner_text()
    assert "no significant difference" in works.inner_text()
    assert "When to trust these figures" in works.inner_text()
    assert fits_the_width(page)
    screenshot(page, "evidence")
    assert axe(page) == []


def test_before_any_evidence_insights_say_not_enough_data_yet(
    live_server, page, screenshot, axe, owner
):
    log_in(page, live_server.url, owner, "/insights/")
    care = page.locator("section[aria-labelledby=care-works]")
    status = care.get_by_role("status")
    assert "Not enough data yet." in status.inner_text()
    assert "No playbook runs an experiment yet." in page.inner_text("#what-works ~ p.card")
    assert fits_the_width(page)
    screenshot(page, "evidence-empty")
    assert axe(page) == []

"""The partner pages in a real browser, at 390 px and 1366 px: the list, a partner's page
with its incidents and answering one, the scorecard, and the add form refusing a touchpoint
another partner runs. Screenshots in test-artifacts/; axe-core reports no serious or
critical violation on any of them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from partners.demo import seed_partners
from partners.models import PartnerIncident
from tests.browser.test_queue import fits_the_width, log_in
from tests.factories import CustomerFactory
from tests.recovery.conftest import log

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(sized_page):
    return sized_page


@pytest.fixture
def partners(org, main_st, harbour):
    now = timezone.now().replace(microsecond=0)
    for i in range(20):
        person = CustomerFactory.create(organization=org, name=f"Guest {i}")
        log(org, person, now - timedelta(days=100 + i), kind="visit", location=main_st)
    return seed_partners(org, now)


def test_an_owner_works_a_partners_incidents(live_server, page, screenshot, axe, partners, owner):
    valet, _ = partners
    log_in(page, live_server.url, owner, "/partners/")
    assert page.get_by_role("link", name="Partners").first.is_visible()
    assert page.get_by_role("link", name="Harbour Valet Co").is_visible()
    assert fits_the_width(page)
    screenshot(page, "list")
    assert axe(page) == []

    page.get_by_role("link", name="Harbour Valet Co").click()
    page.wait_for_url(f"**/partners/{valet.pk}/")
    incident = PartnerIncident.objects.filter(partner=valet, status="open").latest("opened_at")
    card = page.locator(f"#incident-{incident.pk}")
    assert card.is_visible()
    assert fits_the_width(page)
    screenshot(page, "partner")
    assert axe(page) == []

    card.get_by_role("button", name="Record the answer").click()
    error = page.locator(f"#answer-{incident.pk}-error")
    error.wait_for()
    assert error.inner_text() == "Say what the partner answered."
    box = page.locator(f"#answer-{incident.pk}")
    assert box.get_attribute("aria-invalid") == "true"
    assert axe(page) == []
    box.fill("Two more drivers on Friday nights from now on.")
    page.locator(f"#incident-{incident.pk}").get_by_role("button", name="Record the answer").click()
    page.wait_for_selector(f"text=Incident #{incident.pk}: answer recorded.")
    assert "Two more drivers" in page.locator(f"#incident-{incident.pk}").inner_text()
    incident.refresh_from_db()
    assert incident.status == "answered" and incident.answered_by == owner


def test_the_scorecard_reads_at_a_glance(live_server, page, screenshot, axe, partners, owner):
    log_in(page, live_server.url, owner, "/partners/scorecard/")
    table = page.locator("#scorecard")
    assert "Harbour Valet Co" in table.inner_text() and "QuickBite Delivery" in table.inner_text()
    assert fits_the_width(page)
    screenshot(page, "scorecard")
    assert axe(page) == []
    page.get_by_label("Month").fill("2026-13")  # a browser refuses it; the URL need not
    page.goto(f"{live_server.url}/partners/scorecard/?month=2026-13")
    assert "Month: A month as YYYY-MM" in page.locator("#month-error").inner_text()
    assert axe(page) == []


def test_the_add_form_says_which_partner_runs_a_touchpoint(
    live_server, page, screenshot, axe, partners, owner
):
    log_in(page, live_server.url, owner, "/partners/new/")
    page.get_by_label("Name", exact=True).fill("Other Valet")
    page.get_by_label("Parking / valet").check()
    page.get_by_role("button", name="Save").click()
    error = page.locator("#id_touchpoints_error")
    error.wait_for()
    assert "Parking / valet is run by Harbour Valet Co already" in error.inner_text()
    assert fits_the_width(page)
    screenshot(page, "add-refused")
    assert axe(page) == []

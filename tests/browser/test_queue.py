"""The owner's queue and insights in a real browser: filter, assign, resolve, see figures move."""

from datetime import timedelta

import pytest
from django.utils import timezone

from recovery.models import RecoveryCase
from recovery.services import create_default_playbooks
from recovery.sweep import sweep_recovery
from tests.browser.test_pos import log_in
from tests.factories import CustomerFactory
from tests.recovery.conftest import log

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def open_cases(org, main_st, harbour):
    create_default_playbooks(organization=org)
    at = timezone.now() - timedelta(days=2)
    for name, location, point in (
        ("Ada Valet", harbour, {"code": "parking_valet", "third_party": True}),
        ("Bea Wait", main_st, {"code": "wait", "third_party": False}),
    ):
        customer = CustomerFactory(organization=org, name=name)
        log(org, customer, at, kind="complaint", experience=-1, location=location,
            touchpoints=[point])  # fmt: skip
    sweep_recovery(now=at + timedelta(hours=3))


def test_the_owner_filters_assigns_resolves_and_sees_the_figures_change(
    live_server, browser, screenshot, open_cases, owner
):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    log_in(page, live_server.url, owner)
    page.goto(f"{live_server.url}/insights/")
    assert "0 of 2" in page.locator(".kpis").first.inner_text()  # none resolved in SLA yet
    page.goto(f"{live_server.url}/recovery/")
    screenshot(page, "queue")
    assert page.locator("tr[id^=case-]").count() == 2

    page.select_option("select[name=touchpoint]", "parking_valet")
    page.wait_for_function("document.querySelectorAll('tr[id^=case-]').length === 1")
    row = page.locator("tr[id^=case-]")
    assert "Ada Valet" in row.inner_text()
    row.locator("text=Assign me").click()
    page.wait_for_selector(f"tr[id^=case-] >> text={owner.email}")

    row.locator("a", has_text="Ada Valet").click()
    page.wait_for_selector("text=Suggested actions")
    page.locator("label.action input").first.check()
    page.fill("input[name=note]", "Called her, valet comped")
    page.click("button[value=resolve]")
    page.wait_for_selector("text=Resolved")
    screenshot(page, "case-resolved")
    case = RecoveryCase.objects.get(customer__name="Ada Valet")
    assert case.status == "resolved" and case.assignee == owner

    page.goto(f"{live_server.url}/insights/")
    screenshot(page, "insights")
    assert "1 of 2" in page.locator(".kpis").first.inner_text()  # now one resolved in SLA
    page.close()

"""The owner's queue in a real browser, at a phone's 390 px and a desktop's 1366 px: cards
without sideways scrolling on the phone, a table on the desktop, every filter labelled, the
headline in the What column; filter, assign, resolve, and see the figures move. Screenshots in
test-artifacts/; axe-core on the login page and the queue."""

from datetime import timedelta

import pytest
from django.utils import timezone

from recovery.models import RecoveryCase
from recovery.services import assign_case, create_default_playbooks
from recovery.sweep import sweep_care, sweep_recovery
from tests.browser.conftest import VIEWPORTS, watch_policy
from tests.factories import CustomerFactory
from tests.recovery.conftest import log

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def log_in(page, base, user, then: str) -> None:
    page.goto(f"{base}/accounts/login/?next={then}")
    page.fill("input[name=username]", user.email)
    page.fill("input[name=password]", "pw-for-tests-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"**{then}")


def fits_the_width(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.fixture
def named_owner(owner):
    owner.name = "Sam Okafor"
    owner.save(update_fields=["name"])
    return owner


@pytest.fixture
def busy_queue(org, main_st, harbour, named_owner, manager):
    """A morning's queue: a valet failure, a long wait, a forgotten order, a regular gone
    quiet, one case already assigned."""
    manager.name = "Maya Patel"
    manager.save(update_fields=["name"])
    create_default_playbooks(organization=org)
    now = timezone.now()
    stories = [
        ("Margaret Lyon", harbour, 6, -2, "Valet kept her waiting 45 min, car scratched",
         {"code": "parking_valet", "third_party": True}),
        ("Daniel Reyes", main_st, 2, -2, "The cashier forgot my salad and latte",
         {"code": "order_accuracy", "third_party": False}),
        ("Bea Wait", main_st, 1, -1, "Waited 25 minutes for a flat white",
         {"code": "wait", "third_party": False}),
        ("Tom Hughes", harbour, 3, -1, "", {"code": "cleanliness", "third_party": False}),
    ]  # fmt: skip
    for name, location, days, experience, summary, point in stories:
        customer = CustomerFactory.create(organization=org, name=name)
        log(org, customer, now - timedelta(days=days), kind="complaint", location=location,
            experience=experience, summary=summary, touchpoints=[point])  # fmt: skip
    sweep_recovery(now=now)
    regular = CustomerFactory.create(organization=org, name="Priya Shah")
    for week in range(6):
        log(org, regular, now - timedelta(weeks=5 + week), kind="order", location=main_st)
    sweep_care(now=now)
    assign_case(case=RecoveryCase.objects.get(customer__name="Bea Wait"), assignee=manager)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_queue_reads_at_a_phones_width_and_a_desktops(
    live_server, browser, screenshot, axe, busy_queue, named_owner, viewport
):
    width, height = VIEWPORTS[viewport]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    violations = watch_policy(context, page)
    try:
        log_in(page, live_server.url, named_owner, "/recovery/")
        rows = page.locator("tr[id^=case-]")
        assert rows.count() == 5
        margaret = rows.filter(has_text="Margaret Lyon")
        assert "Margaret — valet kept her waiting 45 min · 6 days ago" in margaret.inner_text()
        care = rows.filter(has_text="Priya Shah")
        assert "Priya — usually weekly, last here 5 weeks ago" in care.inner_text()
        assert "Maya Patel" in rows.filter(has_text="Bea Wait").inner_text()  # display names
        for name in ("Location", "Kind", "Touchpoint", "Severity", "Assignee", "Status"):
            assert page.get_by_label(name, exact=True).first.is_visible(), name
            assert page.locator("form.filters .field label", has_text=name).is_visible(), name
        assert page.get_by_label("Overdue only").is_visible()
        assert fits_the_width(page), "no sideways scrolling"
        display = margaret.evaluate("row => getComputedStyle(row).display")
        if width < 700:
            assert display == "block"  # a card
            head = page.locator("table.queue thead").bounding_box()
            assert head is not None and head["height"] <= 1  # for screen readers only
            box = margaret.bounding_box()
            assert box is not None and box["width"] <= width
        else:
            assert display == "table-row"
            assert page.locator("table.queue thead").is_visible()
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, "queue")
        assert axe(page) == []
        assert not violations, "\n".join(violations)
    finally:
        context.close()


def test_the_login_page_passes_axe(live_server, browser, axe, screenshot):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    violations = watch_policy(page.context, page)
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        screenshot(page, "login")
        assert axe(page) == []
        assert not violations, "\n".join(violations)
    finally:
        page.close()


@pytest.fixture
def open_cases(org, main_st, harbour):
    create_default_playbooks(organization=org)
    at = timezone.now() - timedelta(days=2)
    for name, location, point in (
        ("Ada Valet", harbour, {"code": "parking_valet", "third_party": True}),
        ("Bea Wait", main_st, {"code": "wait", "third_party": False}),
    ):
        customer = CustomerFactory.create(organization=org, name=name)
        log(org, customer, at, kind="complaint", experience=-1, location=location,
            touchpoints=[point])  # fmt: skip
    sweep_recovery(now=at + timedelta(hours=3))


def test_the_owner_filters_assigns_resolves_and_sees_the_figures_change(
    live_server, browser, screenshot, open_cases, named_owner
):
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    violations = watch_policy(page.context, page)
    try:
        log_in(page, live_server.url, named_owner, "/recovery/")
        page.goto(f"{live_server.url}/insights/")
        assert "0 of 2" in page.locator(".kpis").first.inner_text()  # none resolved in SLA yet
        page.goto(f"{live_server.url}/recovery/")
        assert page.locator("tr[id^=case-]").count() == 2

        page.get_by_label("Touchpoint").select_option("parking_valet")
        # A function, not an expression: Playwright polls an expression with eval(), which
        # the page's policy refuses.
        page.wait_for_function("() => document.querySelectorAll('tr[id^=case-]').length === 1")
        row = page.locator("tr[id^=case-]")
        assert "Ada Valet" in row.inner_text()
        row.get_by_role("button", name="Assign me").click()
        page.wait_for_selector("tr[id^=case-] >> text=Sam Okafor")
        assert row.get_by_role("button", name="Assign me").count() == 0  # it is mine now

        row.locator("a", has_text="Ada Valet").click()
        page.wait_for_selector("text=Suggested actions")
        assert "Assigned to Sam Okafor" in page.locator("ol.history").inner_text()
        page.locator("label.action input").first.check()
        page.get_by_label("What did you do? (note)").fill("Called her, valet comped")
        page.click("button[value=resolve]")
        page.wait_for_selector("text=Resolved")
        screenshot(page, "case-resolved")
        case = RecoveryCase.objects.get(customer__name="Ada Valet")
        assert case.status == "resolved" and case.assignee == named_owner

        page.goto(f"{live_server.url}/insights/")
        assert "1 of 2" in page.locator(".kpis").first.inner_text()  # now one resolved in SLA
        assert not violations, "\n".join(violations)
    finally:
        page.close()

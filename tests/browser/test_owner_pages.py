"""The owner's other pages in a real browser, at 390 px and 1366 px: the case page, the
customer page with a merge, insights, the playbook editor and the 403 page. Screenshots in
test-artifacts/; axe-core reports no serious or critical violation on any of them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cxcore.models import Customer
from cxcore.services import EpisodeInput, record_episode
from recovery.models import Playbook, RecoveryCase
from recovery.outcomes import measure_outcomes
from recovery.services import acknowledge_case, create_default_playbooks, resolve_case
from recovery.sweep import sweep_recovery
from tests.browser.test_queue import fits_the_width, log_in
from tests.factories import CustomerFactory
from tests.recovery.conftest import log

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(sized_page):
    return sized_page


@pytest.fixture
def named_owner(owner):
    owner.name = "Sam Okafor"
    owner.save(update_fields=["name"])
    return owner


def customer(org, name, *, phone, email="", location=None, days_ago=40, kind="visit"):
    identifiers = {"phone": phone} | ({"email": email} if email else {})
    return record_episode(
        organization=org,
        data=EpisodeInput(
            kind=kind,
            identifiers=identifiers,
            name=name,
            location=location,
            occurred_at=timezone.now() - timedelta(days=days_ago),
        ),
    ).episode.customer


@pytest.fixture
def margaret(org, main_st, harbour):
    """A regular with a phone and an email, an old case put right, and an open one; and a
    duplicate of her, from a feedback form."""
    create_default_playbooks(organization=org)
    now = timezone.now()
    person = customer(org, "Margaret Lyon", phone="07400 123456", email="margaret@example.com",
                      location=main_st, days_ago=120)  # fmt: skip
    for days in (100, 80, 60):
        log(org, person, now - timedelta(days=days), kind="order", location=main_st,
            items=[{"name": "Flat white", "quantity": 1, "price": "3.20"}])  # fmt: skip
    log(org, person, now - timedelta(days=50), kind="complaint", experience=-1,
        location=main_st, summary="Soup was cold")  # fmt: skip
    sweep_recovery(now=now - timedelta(days=49))
    old = RecoveryCase.objects.get(customer=person)
    resolve_case(case=old, note="Called, soup on us", now=now - timedelta(days=48))
    log(org, person, now - timedelta(days=40), kind="visit", experience=1, location=main_st)
    measure_outcomes(now=now - timedelta(days=10))
    log(org, person, now - timedelta(days=6), kind="complaint", experience=-2, location=harbour,
        summary="Valet kept her waiting 45 min, car scratched",
        touchpoints=[{"code": "parking_valet", "third_party": True}])  # fmt: skip
    sweep_recovery(now=now)
    # Feedback the text inference reads as positive: one to correct on the customer page.
    log(org, person, now - timedelta(days=5), kind="feedback", location=harbour,
        summary="Lovely staff though, really kind")  # fmt: skip
    duplicate = customer(org, "M. Lyon", phone="07400 654321", days_ago=3, kind="feedback")
    return person, RecoveryCase.objects.get(customer=person, status="open"), duplicate


def test_the_case_page_reaches_the_customer_and_says_errors_on_the_field(
    live_server, page, screenshot, axe, margaret, named_owner
):
    person, case, _ = margaret
    log_in(page, live_server.url, named_owner, f"/recovery/cases/{case.pk}/")
    assert page.locator(".case .headline").inner_text() == (
        "Margaret — valet kept her waiting 45 min · 6 days ago"
    )
    name = page.get_by_role("link", name="Margaret Lyon")
    assert name.get_attribute("href") == f"/customers/{person.pk}/"
    assert page.get_by_role("link", name="Call +44 7400 123456").get_attribute("href") == (
        "tel:+447400123456"
    )
    assert page.get_by_role("link", name="Email margaret@example.com").is_visible()
    others = page.locator("ul.other-cases")
    assert "Came back happy" in others.inner_text() and "Resolved" in others.inner_text()
    assert fits_the_width(page)
    screenshot(page, "case")
    assert axe(page) == []

    page.get_by_role("button", name="Dismiss").click()
    error = page.locator("#reason-error")
    error.wait_for()
    assert error.inner_text() == "Say why the case is dismissed."
    reason = page.get_by_label("Why dismiss?")
    assert reason.get_attribute("aria-invalid") == "true"
    assert reason.get_attribute("aria-describedby") == "reason-error"
    screenshot(page, "dismiss-needs-a-reason")
    assert axe(page) == []
    name.click()
    page.wait_for_url(f"**/customers/{person.pk}/")


def test_the_customer_page_notes_a_call_corrects_an_experience_and_merges_a_duplicate(
    live_server, page, screenshot, axe, margaret, named_owner
):
    person, case, duplicate = margaret
    log_in(page, live_server.url, named_owner, f"/customers/{person.pk}/")
    cases = page.locator("ul.other-cases")
    assert f"case #{case.pk}" in cases.inner_text() and "Came back happy" in cases.inner_text()
    assert fits_the_width(page)
    screenshot(page, "customer")
    assert axe(page) == []

    page.get_by_text("Add notes").click()
    page.get_by_label("Notes").fill("Oat milk. Prefers the window table.")
    page.get_by_role("button", name="Save notes").click()
    page.wait_for_selector("text=Notes saved.")
    assert "Oat milk. Prefers the window table." in page.locator(".notes").inner_text()

    page.get_by_text("Log a call or outreach").click()
    page.get_by_label("How").select_option("call")
    page.get_by_label("What was said").fill("Apologised for the valet, coffee on us next time")
    page.get_by_role("button", name="Log it").click()
    page.wait_for_selector("text=Phone call logged.")
    assert page.locator("li.episode.kind-outreach").first.is_visible()

    assert page.get_by_text("Correct the experience").count() == 0  # one control, not many
    page.get_by_text("Correct an experience").click()
    feedback = person.episodes.get(kind="feedback")
    page.get_by_label("Episode").select_option(str(feedback.pk))
    page.get_by_label("Experience", exact=True).select_option("2")  # the label, alone
    page.get_by_label("Why (optional)").fill("She said so at the counter")
    page.locator("#correct button[type=submit]").click()
    page.wait_for_selector(f"#episode-{feedback.pk} >> text=corrected")
    assert "+2" in page.locator(f"#episode-{feedback.pk}").inner_text()
    assert axe(page) == []

    page.get_by_role("link", name="Merge a duplicate of Margaret Lyon…").click()
    page.get_by_label("Phone, email, card or name").fill("Lyon")
    page.get_by_role("button", name="Find").click()
    page.get_by_role("link", name="M. Lyon").click()
    page.wait_for_selector(".side-by-side")
    sides = page.locator(".card.side")
    assert sides.count() == 2
    assert "+44 7400 654321" in sides.nth(1).inner_text()
    assert fits_the_width(page)
    screenshot(page, "merge")
    assert axe(page) == []
    page.get_by_role("button", name="Merge M. Lyon into Margaret Lyon").click()
    page.wait_for_selector("text=Merged M. Lyon into Margaret Lyon.")
    assert not Customer.objects.filter(pk=duplicate.pk).exists()
    assert "+44 7400 654321" in page.locator(".customer").inner_text()


@pytest.fixture
def eight_weeks(org, main_st, harbour):
    """Eight weeks of bad experiences (one week without any): some put right on the spot (no
    case), most cases followed up in time, and most of those customers back since."""
    create_default_playbooks(organization=org)
    now = timezone.now()
    points = [("wait", main_st), ("order_accuracy", main_st), ("parking_valet", harbour),
              ("food_and_drink", harbour), ("staff", main_st)]  # fmt: skip
    n = 0
    for week, count in enumerate([3, 1, 0, 4, 2, 5, 2, 3]):
        for i in range(count):
            code, place = points[(week + i) % len(points)]
            person = CustomerFactory.create(organization=org, name=f"Guest {n}")
            at = now - timedelta(weeks=8 - week, hours=i * 5)
            log(org, person, at, kind="complaint", experience=-1 - (i % 2), location=place,
                touchpoints=[{"code": code, "third_party": code == "parking_valet"}])  # fmt: skip
            if n % 4 == 3:  # put right at the counter: no case
                log(org, person, at + timedelta(minutes=20), kind="recovery", location=place)
            sweep_recovery(now=at + timedelta(hours=3))
            opened = RecoveryCase.objects.filter(customer=person).first()
            if opened is not None and n % 3:
                acknowledge_case(case=opened, now=opened.opened_at + timedelta(minutes=40))
                resolve_case(case=opened, note="Called", now=opened.opened_at + timedelta(hours=9))
            if opened is not None and n % 5 and at < now - timedelta(days=5):
                log(org, person, at + timedelta(days=4), kind="visit", experience=1,
                    location=place)  # fmt: skip
            n += 1
    measure_outcomes(now=now)


def test_insights_read_at_a_glance(live_server, page, screenshot, axe, eight_weeks, named_owner):
    log_in(page, live_server.url, named_owner, "/insights/")
    start = (timezone.localdate() - timedelta(weeks=9)).isoformat()
    page.get_by_label("From").fill(start)
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"**/insights/?from={start}*")
    chart = page.locator("figure.line-chart")
    assert chart.locator("svg polyline").count() == 2
    page.locator("figure.line-chart summary").click()
    weeks = chart.locator("tbody tr")
    assert weeks.count() >= 9
    assert "w/c" in weeks.first.inner_text()
    assert any(weeks.nth(i).inner_text().split("\t")[1:] == ["0", "0"] for i in range(9))
    assert "< 1 h" in page.locator(".kpis").first.inner_text()  # acknowledged in 40 minutes
    assert "Parking / valet" in page.locator("table.heat").inner_text()
    assert fits_the_width(page)
    page.locator("figure.line-chart summary").click()  # the table closed again for the picture
    screenshot(page, "insights")
    assert axe(page) == []


def test_the_playbook_editor_ticks_beside_labels_and_slas_in_hours_or_days(
    live_server, page, screenshot, axe, org, named_owner
):
    create_default_playbooks(organization=org)
    playbook = Playbook.objects.for_org(org).get(name="Long wait")
    log_in(page, live_server.url, named_owner, f"/recovery/playbooks/{playbook.pk}/")
    assert page.get_by_label("Acknowledge within: how many").input_value() == "4"
    assert page.get_by_label("Acknowledge within: unit").input_value() == "hours"
    assert page.get_by_label("Resolve within: how many").input_value() == "2"
    assert page.get_by_label("Resolve within: unit").input_value() == "days"
    for label in page.locator("label.check").all():  # each tick box on its label's line
        box = label.locator("input").bounding_box()
        text = label.locator("span").bounding_box()
        assert box and text
        middle = box["y"] + box["height"] / 2
        assert text["y"] <= middle <= text["y"] + text["height"] and text["x"] > box["x"]
    assert fits_the_width(page)
    screenshot(page, "playbook")
    assert axe(page) == []

    page.get_by_label("Acknowledge within: how many").fill("0")
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector("#id_ack_sla_error")
    assert page.locator("#id_ack_sla_error").inner_text() == "Must be more than zero."
    screenshot(page, "playbook-sla-error")
    assert axe(page) == []
    page.get_by_label("Acknowledge within: how many").fill("90")
    page.get_by_label("Acknowledge within: unit").select_option("hours")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/recovery/playbooks/")
    assert (
        "acknowledge within 90 hours, resolve within 2 days"
        in page.locator("li", has_text="Long wait").inner_text()
    )
    assert axe(page) == []


def test_staff_get_a_403_page_that_points_to_the_till(live_server, page, axe, screenshot, staff):
    log_in(page, live_server.url, staff, "/pos/")
    response = page.goto(f"{live_server.url}/recovery/")
    assert response is not None and response.status == 403
    assert "This page is for owners and managers." in page.locator("main").inner_text()
    screenshot(page, "403")
    assert axe(page) == []
    page.get_by_role("link", name="Go to the till").click()
    page.wait_for_url("**/pos/")

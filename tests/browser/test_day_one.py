"""The whole of a cafe's day one in a real browser (issue 13): an owner signs up, adds a second
location, imports a Square customers export (dry run, then for real) and a transactions export,
invites a barista who accepts from the email, pairs a tablet, and the barista switches user on
it by PIN and sees the care prompt for an imported regular gone quiet.

Everything goes through the pages, in three browser contexts (the owner's desk at 1366×768, the
barista's phone, the tablet at 390×844), each watched for CSP violations. Only what no page does
is done here: a real Celery worker (on a Redis of the test's own) runs the import batches, as
in production, and the test calls the care sweep, which is beat's job every minute."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core import mail
from django.core.cache import cache

from accounts.models import Device, Location, Membership, Organization, Role
from cxcore.models import Customer, Episode, Identifier
from imports.models import ImportBatch, ImportStatus
from recovery.models import RecoveryCase
from recovery.sweep import sweep_care
from tests.browser.conftest import VIEWPORTS, watch_policy
from tests.browser.test_queue import fits_the_width
from tests.recovery.test_worker import publish_to, redis, worker  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DATA = Path(__file__).parent / "data"
# Ten customers in Square's export format (a byte-order mark, Windows line endings): Margaret
# Hale twice (the second row by email in capitals and phone in E.164: one customer), a
# phone-only row, a Square-id-only row, unicode names, a bad phone, blank cells, addresses.
CUSTOMERS = DATA / "day-one-customers.csv"
# Margaret's six weekly coffees at Main St, the last on 22 Oct 2026: a regular late by any
# date after 12 Nov 2026 (three times her weekly gap), so the file never goes stale. Plus one
# visit at Harbour and a walk-in without a customer.
TRANSACTIONS = DATA / "day-one-transactions.csv"
OWNER_PASSWORD = "corner-cup-owner-26"
BARISTA_PASSWORD = "a-long-espresso-9"
BARISTA_EMAIL = "barista@cornercup.example"
MARGARET_POS_ID = "7XK2M9QF4R1H3"


@pytest.fixture
def contexts(browser):
    """New watched browser contexts; every one is closed, and any CSP violation fails the test."""
    opened = []

    def open_context(size: str = "1366x768"):
        width, height = VIEWPORTS[size]
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        opened.append((context, watch_policy(context, page)))
        return page

    yield open_context
    violations = [v for _context, found in opened for v in found]
    for context, _found in opened:
        context.close()
    assert not violations, "\n".join(violations)


def import_file(page, base: str, path: Path, fmt: str, *, screenshot, axe, name: str) -> int:
    """Upload on the import page, read the dry run's summary, import for real; returns the
    real batch's id."""
    page.goto(f"{base}/settings/import/")
    page.set_input_files("#id_file", str(path))
    page.select_option("#id_format", fmt)
    page.get_by_role("button", name="Upload and check (dry run)").click()
    page.wait_for_url(re.compile(r"/settings/import/\d+/$"))
    # The page polls the batch (htmx) until the worker is done with it.
    page.get_by_role("heading", name="Dry run finished: nothing was written").wait_for(
        timeout=60_000
    )
    assert axe(page) == []
    screenshot(page, f"{name}-dry-run")
    summary = page.locator("dl.summary").inner_text()
    page.get_by_role("button", name=f"Import {path.name} for real").click()
    page.get_by_role("heading", name="Imported", exact=True).wait_for(timeout=60_000)
    assert page.locator("dl.summary").inner_text() == summary  # the dry run said what it did
    screenshot(page, f"{name}-imported")
    found = re.search(r"/settings/import/(\d+)/$", page.url)
    assert found, page.url
    return int(found.group(1))


def summary_of(page) -> dict[str, str]:
    terms = page.locator("dl.summary dt").all_inner_texts()
    return dict(zip(terms, page.locator("dl.summary dd").all_inner_texts(), strict=True))


@pytest.fixture
def import_worker(request):
    """A real Celery worker on a Redis of the test's own, without beat (the test runs the
    sweep itself); this process publishes there. Stopped, as a process group, after the test."""
    broker_url = request.getfixturevalue("redis").url
    request.getfixturevalue("publish_to")(broker_url)
    request.getfixturevalue("worker")(broker_url, beat=False)


def test_day_one_from_sign_up_to_a_care_prompt_on_the_till(
    live_server, contexts, import_worker, settings, tmp_path, screenshot, axe
):
    base = live_server.url
    settings.SITE_URL = base  # the invitation email's link
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"
    cache.clear()  # the sign-up rate limit counts per address, in this process's cache

    # --- the owner signs up and adds a second location ---------------------------------------
    desk = contexts()
    desk.goto(f"{base}/accounts/signup/")
    assert axe(desk) == []
    desk.fill("#id_organization_name", "Corner Cup")
    assert desk.input_value("#id_country") == "GB"
    desk.fill("#id_location_name", "Main St")
    desk.fill("#id_owner_name", "Olive Hart")
    desk.fill("#id_email", "olive@cornercup.example")
    desk.fill("#id_password", OWNER_PASSWORD)
    screenshot(desk, "signup")
    desk.get_by_role("button", name="Sign up").click()
    desk.wait_for_url(f"{base}/settings/")
    org = Organization.objects.get(name="Corner Cup")

    desk.locator(".subnav").get_by_role("link", name="Locations").click()
    desk.wait_for_url("**/settings/locations/")
    desk.fill("#id_name", "Harbour")
    desk.get_by_role("button", name="Add location").click()
    desk.wait_for_selector("text=Added Harbour.")
    assert set(Location.objects.filter(organization=org).values_list("name", flat=True)) == {
        "Main St",
        "Harbour",
    }

    # --- the Square customers export, then the transactions ---------------------------------
    desk.locator(".subnav").get_by_role("link", name="Import").click()
    desk.wait_for_url("**/settings/import/")
    assert axe(desk) == []
    screenshot(desk, "import")
    # The location select is for history files only (imports.js shows it for them).
    assert not desk.get_by_label("Location (history files)").is_visible()
    desk.select_option("#id_format", "square-transactions")
    assert desk.get_by_label("Location (history files)").is_visible()
    import_file(desk, base, CUSTOMERS, "square", screenshot=screenshot, axe=axe, name="customers")
    counts = summary_of(desk)
    assert counts["Rows read"] == "10"
    assert counts["New customers"] == "8"
    assert counts["Matched a known customer"] == "1"  # Margaret's second row
    assert counts["Phone only"] == "1"  # Dan
    assert counts["POS customer id only"] == "1"  # the cash regular
    assert counts["Rejected"] == "1"  # the phone "12", on the file's line 9 (the header is 1)
    assert desk.locator("#rejections tbody td").first.inner_text() == "9"
    assert "'12'" in desk.locator("#rejections").inner_text()
    margaret = Customer.objects.get(
        organization=org, identifiers__kind="pos_id", identifiers__value=MARGARET_POS_ID
    )
    assert margaret.name == "Margaret Hale"
    assert margaret.notes == "Oat flat white, extra hot"  # her Memo
    assert margaret.marketing_email_consent == "yes"
    assert Identifier.objects.filter(customer=margaret, kind="phone").get().value == (
        "+447400200111"
    )

    import_file(
        desk,
        base,
        TRANSACTIONS,
        "square-transactions",
        screenshot=screenshot,
        axe=axe,
        name="transactions",
    )
    counts = summary_of(desk)
    assert counts["Episodes created"] == "7"
    assert counts["Without a customer (skipped)"] == "1"
    margaret.refresh_from_db()
    assert margaret.visit_count == 6
    assert Episode.objects.filter(customer=margaret, source="import").count() == 6
    assert not ImportBatch.objects.exclude(status=ImportStatus.DONE).exists()

    # The beat's sweep, run here: it opens the care case of the regular gone quiet.
    assert sweep_care().opened == 1
    case = RecoveryCase.objects.get(organization=org)
    assert case.customer_id == margaret.pk and case.is_open

    # --- a barista is invited and joins from the email ----------------------------------------
    desk.locator(".subnav").get_by_role("link", name="Team").click()
    desk.wait_for_url("**/settings/team/")
    desk.get_by_label("Email").fill(BARISTA_EMAIL)
    desk.get_by_label("Role", exact=True).select_option("staff")
    desk.get_by_label("Main St").check()
    desk.get_by_role("button", name="Send invitation").click()
    desk.wait_for_selector(f"text=Sent an invitation to {BARISTA_EMAIL}.")
    (message,) = mail.outbox
    assert message.to == [BARISTA_EMAIL]
    link = re.search(r"http://\S+/accounts/invitations/\S+/", str(message.body))
    assert link, message.body

    phone = contexts()
    phone.goto(link.group(0))
    phone.get_by_role("heading", name="Join Corner Cup").wait_for()
    phone.get_by_label("Your name").fill("Bea Barista")
    phone.get_by_label("Password", exact=True).fill(BARISTA_PASSWORD)
    phone.get_by_label("Password again").fill(BARISTA_PASSWORD)
    phone.get_by_role("button", name="Join Corner Cup").click()
    phone.wait_for_url("**/pos/")
    membership = Membership.objects.get(organization=org, user__email=BARISTA_EMAIL)
    assert membership.role == Role.STAFF
    assert list(membership.locations.values_list("name", flat=True)) == ["Main St"]

    # She sets her till PIN on her own phone.
    phone.goto(f"{base}/accounts/pin/")
    phone.fill("input[name=pin]", "4826")
    phone.fill("input[name=pin_again]", "4826")
    phone.get_by_role("button", name="Set my PIN").click()
    phone.get_by_text("Your till PIN is set.").wait_for()
    membership.refresh_from_db()
    assert membership.pin_hash

    # --- the owner pairs the tablet at Main St -------------------------------------------------
    desk.locator(".subnav").get_by_role("link", name="Tills").click()
    desk.wait_for_url("**/settings/devices/")
    desk.select_option("select[name=location]", label="Main St")
    desk.fill("input[name=name]", "Front counter")
    desk.get_by_role("button", name="Create pairing link").click()
    pairing_link = desk.input_value("#pairing-link")
    assert "/till/pair/" in pairing_link

    tablet = contexts("390x844")
    tablet.goto(f"{base}/accounts/login/?next=/pos/")
    tablet.fill("input[name=username]", "olive@cornercup.example")
    tablet.fill("input[name=password]", OWNER_PASSWORD)
    tablet.click("button[type=submit]")
    tablet.wait_for_url("**/pos/")
    tablet.goto(pairing_link)
    tablet.get_by_role("button", name="Pair this tablet").click()
    # Pairing signs the owner out of the counter tablet and opens the PIN switch.
    tablet.wait_for_url("**/till/switch/")
    assert Device.objects.get(organization=org).paired_at is not None
    assert "now signed in" not in tablet.locator("main").inner_text()

    # --- the barista switches user by PIN and finds Margaret -----------------------------------
    assert axe(tablet) == []
    screenshot(tablet, "switch-user")
    tablet.get_by_text("Bea Barista", exact=True).click()
    tablet.fill("#till-pin", "4826")
    tablet.get_by_role("button", name="Switch user").click()
    tablet.wait_for_url("**/pos/")
    assert "Main St" in tablet.locator(".pos-top").inner_text()

    tablet.fill("input[name=q]", "07400 200111")
    tablet.keyboard.press("Enter")
    headline = tablet.locator(".prompt .headline")
    headline.wait_for()
    # "Margaret — usually weekly, last here 5 weeks ago" (how long ago moves with the clock)
    assert headline.inner_text().startswith("Margaret — usually weekly, last here ")
    # Her imported visits are on the timeline with what she spent.
    assert tablet.locator(".order-lines li").first.inner_text() == "Spent £3.60"
    assert fits_the_width(tablet)
    assert axe(tablet) == []
    screenshot(tablet, "care-prompt")

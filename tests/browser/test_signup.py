"""Sign-up to switching organization in a real browser, at 390 px and 1366 px: sign up, add a
second location, archive it, add a second organization and switch back through the top bar.
Every page runs under the CSP (sized_page fails on a violation); axe-core finds no serious or
critical violation on the sign-up, settings and locations pages."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from accounts.models import Location, Organization, TeamAction, TeamEvent, User
from tests.browser.test_queue import fits_the_width

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(sized_page):
    cache.clear()  # the sign-up rate limit counts per address, in this process's cache
    return sized_page


def test_sign_up_add_and_archive_a_location_then_switch_organization(
    live_server, page, screenshot, axe
):
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    page.click("text=Sign up")
    page.wait_for_url("**/accounts/signup/")
    assert axe(page) == []
    page.fill("#id_organization_name", "Corner Cup")
    page.select_option("#id_country", "IE")
    page.select_option("#id_time_zone", "Europe/Dublin")
    page.fill("#id_location_name", "Quay St")
    page.fill("#id_owner_name", "Aoife Byrne")
    page.fill("#id_email", "aoife@example.com")
    page.fill("#id_password", "latte-art-2026")
    screenshot(page, "signup")
    page.click("button:has-text('Sign up')")
    page.wait_for_url(f"{base}/settings/")
    assert page.locator("h1").inner_text() == "Settings"
    assert page.locator("text=Aoife Byrne").first.is_visible()  # the top bar names her
    assert fits_the_width(page)
    assert axe(page) == []
    screenshot(page, "settings")

    page.click(".subnav >> text=Locations")
    page.wait_for_url("**/settings/locations/")
    page.fill("#id_name", "Harbour Kiosk")
    page.click("button:has-text('Add location')")
    page.wait_for_selector("text=Added Harbour Kiosk.")
    assert axe(page) == []
    assert fits_the_width(page)
    screenshot(page, "locations")

    page.once("dialog", lambda dialog: dialog.accept())  # settings.js asks before archiving
    page.click("button:has-text('Archive Harbour Kiosk')")
    page.wait_for_selector("text=Archived Harbour Kiosk")
    assert page.locator("button:has-text('Restore Harbour Kiosk')").is_visible()
    kiosk = Location.objects.get(name="Harbour Kiosk")
    assert not kiosk.is_active and kiosk.archived_at is not None
    # Dismissing the question archives nothing.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("button:has-text('Archive Quay St')")
    assert Location.objects.get(name="Quay St").is_active

    # A second organization of her own, then back to the first through the top bar.
    page.goto(f"{base}/accounts/signup/")
    page.fill("#id_organization_name", "Second Cup")
    page.fill("#id_location_name", "Market Sq")
    page.click("button:has-text('Add organization')")
    page.wait_for_url(f"{base}/settings/")
    assert page.locator("#id_name").input_value() == "Second Cup"
    first = Organization.objects.get(name="Corner Cup")
    page.select_option("#switch-organization", str(first.pk))
    page.click(".org-switcher button:has-text('Switch')")
    page.wait_for_selector("text=You are working in Corner Cup.")
    assert fits_the_width(page)
    screenshot(page, "switched")
    page.goto(f"{base}/settings/")
    assert page.locator("#id_name").input_value() == "Corner Cup"

    user = User.objects.get(email="aoife@example.com")
    assert set(user.memberships.values_list("organization__name", flat=True)) == {
        "Corner Cup",
        "Second Cup",
    }
    actions = set(TeamEvent.objects.filter(organization=first).values_list("action", flat=True))
    assert {TeamAction.SIGNED_UP, TeamAction.LOCATION_ADDED, TeamAction.LOCATION_ARCHIVED} <= (
        actions
    )

"""A shared till in a real browser: the owner pairs a tablet (a second browser context is the
tablet), a barista switches user on it with her PIN, five wrong PINs lock it, a manager resets
it. The tablet at a phone's 390×844 and a desktop's 1366×768, watched for CSP violations."""

from __future__ import annotations

import pytest

from accounts.models import Membership, Role
from accounts.services import add_member
from accounts.services.devices import set_pin
from tests.browser.conftest import VIEWPORTS, watch_policy
from tests.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-1"


@pytest.fixture
def team(org, main_st, harbour):
    def member(name: str, role: str, locations=()):
        user = UserFactory.create(name=name)
        add_member(organization=org, user=user, role=role, locations=list(locations))
        return user

    owner = member("Olive Owner", Role.OWNER)
    manager = member("Max Manager", Role.MANAGER, [main_st])
    barista = member("Bea Barista", Role.STAFF, [main_st])
    membership = Membership.objects.select_related("user", "organization").get(user=barista)
    set_pin(membership=membership, pin="2580")
    return owner, manager, barista


@pytest.fixture(params=list(VIEWPORTS))
def contexts(request, browser):
    """New watched browser contexts: the tablet at each size, the others on a desktop."""
    opened = []

    def open_context(size: str = "1366x768"):
        width, height = VIEWPORTS[size]
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        opened.append((context, watch_policy(context, page)))
        return page

    open_context.tablet_size = request.param  # type: ignore[attr-defined]
    yield open_context
    violations = [v for context, found in opened for v in found]
    for context, _found in opened:
        context.close()
    assert not violations, "\n".join(violations)


def log_in(page, base: str, user, next_url: str) -> None:
    page.goto(f"{base}/accounts/login/?next={next_url}")
    page.fill("input[name=username]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_url}")


def switch_to(page, base: str, name: str, pin: str) -> None:
    page.goto(f"{base}/till/switch/")
    page.get_by_text(name, exact=True).click()
    page.fill("#till-pin", pin)
    page.get_by_role("button", name="Switch user").click()


def test_a_tablet_is_paired_and_staff_switch_user_by_pin(
    live_server, settings, contexts, screenshot, axe, team, main_st
):
    owner, manager, barista = team
    base = live_server.url
    settings.SITE_URL = base  # the pairing link is built from it, as emails are

    # The owner, at the office, makes a pairing link for Main St.
    office = contexts()
    log_in(office, base, owner, "/settings/devices/")
    office.select_option("select[name=location]", label="Main St")
    office.fill("input[name=name]", "Front counter")
    office.get_by_role("button", name="Create pairing link").click()
    link = office.input_value("#pairing-link")
    assert "/till/pair/" in link
    screenshot(office, "pairing-link")
    assert axe(office) == []

    # On the tablet, signed in as the owner, the link pairs it, signs the owner out and
    # opens the PIN switch.
    tablet = contexts(contexts.tablet_size)
    log_in(tablet, base, owner, "/pos/")
    tablet.goto(link)
    tablet.get_by_role("button", name="Pair this tablet").click()
    tablet.wait_for_url("**/till/switch/")
    cookie = next(c for c in tablet.context.cookies() if c["name"] == "comeback_device")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    # The barista taps her name and types her PIN.
    assert tablet.get_attribute("#till-pin", "inputmode") == "numeric"
    assert "Bea Barista" in tablet.inner_text(".till-tiles")
    screenshot(tablet, "switch")
    assert axe(tablet) == []
    switch_to(tablet, base, "Bea Barista", "2580")
    tablet.wait_for_url("**/pos/")
    tablet.goto(f"{base}/till/switch/")
    assert "now signed in: Bea Barista" in tablet.inner_text("main")
    assert tablet.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # Five wrong PINs lock hers; even the right one then fails.
    for left in ("4 tries", "3 tries", "2 tries", "1 try"):
        switch_to(tablet, base, "Bea Barista", "1397")
        assert f"Wrong PIN, {left} left." in tablet.inner_text("#switch-error")
    switch_to(tablet, base, "Bea Barista", "1397")
    assert "locked until" in tablet.inner_text("#switch-error")
    switch_to(tablet, base, "Bea Barista", "2580")
    assert "locked until" in tablet.inner_text("#switch-error")
    screenshot(tablet, "locked")
    assert axe(tablet) == []

    # Her manager resets it from the Tills page; she sets a new PIN and is back in.
    desk = contexts()
    log_in(desk, base, manager, "/settings/devices/")
    assert "locked until" in desk.inner_text("#pins")
    desk.get_by_role("button", name="Reset Bea Barista's PIN").click()
    desk.wait_for_url("**/settings/devices/")
    assert "Reset Bea Barista's PIN" in desk.inner_text("main")
    assert Membership.objects.get(user=barista).pin_hash == ""
    assert "Front counter" in desk.inner_text("#devices")  # the manager's location's till
    screenshot(desk, "tills")
    assert axe(desk) == []

    phone = contexts()
    log_in(phone, base, barista, "/accounts/pin/")
    phone.fill("input[name=pin]", "4826")
    phone.fill("input[name=pin_again]", "4826")
    phone.get_by_role("button", name="Set my PIN").click()
    phone.wait_for_url("**/accounts/pin/")
    switch_to(tablet, base, "Bea Barista", "4826")
    tablet.wait_for_url("**/pos/")

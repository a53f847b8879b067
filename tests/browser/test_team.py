"""The team in a real browser: an owner invites a barista, who opens the link in a browser of
their own, sets a name and password and lands on the till; the owner changes the role and
deactivates them (after a confirm), and the history says each step. Watched for CSP violations;
axe-core reports no serious or critical violation on the team pages."""

import re

import pytest
from django.core import mail

from tests.browser.conftest import watch_policy
from tests.browser.test_queue import fits_the_width, log_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-espresso-9"


def test_owner_invites_a_barista_who_joins_then_is_promoted_and_deactivated(
    live_server, browser, owner, main_st, settings, axe, screenshot
):
    settings.SITE_URL = live_server.url
    owner.name = "Sam Okafor"
    owner.save(update_fields=["name"])
    owner_context = browser.new_context(viewport={"width": 390, "height": 900})
    page = owner_context.new_page()
    violations = watch_policy(owner_context, page)
    barista_context = browser.new_context(viewport={"width": 1366, "height": 768})
    barista = barista_context.new_page()
    violations += watch_policy(barista_context, barista)
    try:
        log_in(page, live_server.url, owner, "/settings/team/")
        page.get_by_label("Email").fill("bea@example.com")
        page.get_by_label("Role", exact=True).select_option("staff")
        page.get_by_label("Main St").check()
        page.get_by_role("button", name="Send invitation").click()
        page.wait_for_selector("text=Sent an invitation to bea@example.com.")
        assert fits_the_width(page)
        assert axe(page) == []
        screenshot(page, "team")

        (message,) = mail.outbox
        link = re.search(r"http://\S+/accounts/invitations/\S+/", str(message.body))
        assert link, message.body
        barista.goto(link.group(0))
        assert barista.get_by_role("heading", name="Join Corner Cup").is_visible()
        assert axe(barista) == []
        screenshot(barista, "join")
        barista.get_by_label("Your name").fill("Bea Barista")
        barista.get_by_label("Password", exact=True).fill(PASSWORD)
        barista.get_by_label("Password again").fill(PASSWORD)
        barista.get_by_role("button", name="Join Corner Cup").click()
        barista.wait_for_url("**/pos/")
        assert barista.url.endswith("/pos/")  # the till, signed in as Bea

        page.goto(f"{live_server.url}/settings/team/")
        page.get_by_role("link", name="Edit Bea Barista").click()
        assert axe(page) == [] and fits_the_width(page)
        screenshot(page, "member")
        page.get_by_label("Role", exact=True).select_option("manager")
        page.get_by_role("button", name="Save role and locations").click()
        page.wait_for_selector("text=Saved Bea Barista.")
        page.get_by_role("link", name="Edit Bea Barista").click()
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Deactivate Bea Barista").click()
        page.wait_for_selector("text=Deactivated Bea Barista.")

        history = page.locator("#history").inner_text()
        for line in ("Invited", "Joined", "Changed a role", "staff → manager",
                     "Deactivated a member"):  # fmt: skip
            assert line in history, history
        assert "Sam Okafor" in history and "Bea Barista" in history

        barista.goto(f"{live_server.url}/pos/")
        assert "/accounts/login/" in barista.url  # their session ended
    finally:
        owner_context.close()
        barista_context.close()
    assert not violations, "\n".join(violations)

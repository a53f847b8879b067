"""The strict Content-Security-Policy in a real browser: the main pages as the owner and the
till as staff, with their htmx interactions, the API docs, the browsable API and the admin.
Any CSP violation fails the test: Chromium reports each one both as a
`securitypolicyviolation` event (caught by an init script, which the policy does not apply
to) and as a console error; both are collected, across navigations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from accounts.models import Membership, User
from tests.browser.conftest import watch_policy
from tests.browser.test_pos import find, story  # noqa: F401  (story: a pytest fixture)
from tests.browser.test_queue import log_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@dataclass
class Watched:
    page: Any
    found: list[str]

    def problems(self) -> list[str]:
        return self.found


@pytest.fixture
def watched(browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    yield Watched(page, watch_policy(context, page))
    context.close()


def settle(page) -> None:
    """Wait until the page's requests are done (htmx swaps included)."""
    page.wait_for_load_state("networkidle")


def test_the_owners_pages_run_under_the_strict_policy(live_server, watched, story, owner):  # noqa: F811
    dan, _complaint, case = story
    page, base = watched.page, live_server.url
    log_in(page, base, owner, "/customers/")

    # Customers: the search box answers as you type (htmx), then the customer's page.
    page.fill("input[name=q]", "Reyes")
    page.wait_for_selector("#results >> text=Daniel Reyes")
    page.click("#results >> text=Daniel Reyes")
    page.wait_for_url(f"**/customers/{dan.pk}/")
    settle(page)

    # The queue: a filter swaps the rows in (htmx); the digest box submits its form at once
    # (static/js/app.js, once an inline onchange).
    page.goto(f"{base}/recovery/")
    page.get_by_label("Touchpoint").select_option("order_accuracy")
    # A function, not an expression: Playwright polls an expression with eval(), which
    # the page's policy refuses.
    page.wait_for_function("() => document.querySelectorAll('tr[id^=case-]').length === 1")
    page.check("input[name=daily_digest]")
    page.wait_for_selector("text=Daily digest on.")
    assert Membership.objects.get(user=owner).daily_digest is True

    # A case page, insights (the heat map's colours from heat.css, not style attributes).
    page.goto(f"{base}/recovery/cases/{case.pk}/")
    page.wait_for_selector("text=Suggested actions")
    page.goto(f"{base}/insights/")
    page.wait_for_selector("table.heat")
    hottest = page.locator("table.heat td.heat-100").first
    assert hottest.evaluate("td => getComputedStyle(td).backgroundColor") == "rgb(163, 52, 26)"
    assert hottest.evaluate("td => getComputedStyle(td).color") == "rgb(255, 255, 255)"

    for path, ready in (
        ("/recovery/playbooks/", "h1"),
        ("/accounts/api-keys/", "h1"),
        ("/api/docs/", "#swagger-ui .opblock"),  # Swagger UI rendered the operations
        ("/api/v1/customers/", "#content"),  # the browsable API, as a signed-in browser
        (f"/api/v1/customers/{dan.pk}/", "#content"),
        ("/no-such-page/", "h1"),
    ):
        page.goto(f"{base}{path}")
        page.wait_for_selector(ready)
        settle(page)
    assert page.locator("#swagger-ui").count() == 0  # (the last page was not the docs)

    assert not watched.problems(), "\n".join(watched.problems())


def test_the_till_runs_under_the_strict_policy(live_server, watched, story, staff):  # noqa: F811
    _dan, _complaint, case = story
    page = watched.page
    log_in(page, live_server.url, staff, "/pos/")
    find(page, "0555")
    page.wait_for_selector(".prompt .headline")
    page.click("text=On it")  # acknowledge
    page.wait_for_selector(".prompt .headline")
    settle(page)
    case.refresh_from_db()
    assert case.acknowledged_at is not None

    page.click("text=Not now")
    page.wait_for_selector("text=we will ask again next visit")
    page.click("details.prompt summary")
    page.click("text=Done — close it")  # nothing ticked: a 422 swapped in with the error
    page.wait_for_selector(f"#resolve-error-{case.pk}")
    page.get_by_label("Anything else you did").fill("Comped his latte")
    page.click("text=Done — close it")
    page.wait_for_selector("text=the case is closed")

    page.click("text=+ Complaint")
    page.get_by_label("Where did it go wrong?").select_option("wait")
    page.get_by_label("How bad was it?").select_option("-1")
    page.click("text=Log the complaint")
    page.wait_for_selector("text=Complaint logged.")
    settle(page)

    page.goto(f"{live_server.url}/recovery/")  # staff: the 403 page
    page.wait_for_selector("text=Not for your role")
    assert not watched.problems(), "\n".join(watched.problems())


def test_the_admin_runs_under_the_strict_policy(live_server, watched, story):  # noqa: F811
    dan, _complaint, case = story
    User.objects.create_superuser("root@example.com", "pw-for-tests-1")
    page, base = watched.page, live_server.url
    page.goto(f"{base}/admin/login/")
    page.fill("input[name=username]", "root@example.com")
    page.fill("input[name=password]", "pw-for-tests-1")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    for path in (
        "/admin/cxcore/customer/",
        f"/admin/cxcore/customer/{dan.pk}/change/",
        "/admin/recovery/recoverycase/",
        f"/admin/recovery/recoverycase/{case.pk}/change/",
        "/admin/accounts/organization/add/",
    ):
        page.goto(f"{base}{path}")
        page.wait_for_selector("#content")
        settle(page)
    assert not watched.problems(), "\n".join(watched.problems())


def test_the_watch_sees_a_violation_when_there_is_one(live_server, watched):
    """The checks above cannot pass by seeing nothing: an inline style put into a page is
    refused, and reported."""
    page = watched.page
    page.goto(f"{live_server.url}/accounts/login/")
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color:red\">x</p>')")
    deadline = 50
    while not watched.problems() and deadline:
        page.wait_for_timeout(100)
        deadline -= 1
    assert any("style-src" in problem for problem in watched.problems()), watched.problems()

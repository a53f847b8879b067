"""The owners' connections page in a real browser, at 390 px and 1366 px: connecting Square
gives the notification URL to paste into Square, and the reason map is edited in place.
axe-core reports no serious or critical violation."""

import pytest

from connectors.models import ReasonMap, SquareConnection
from tests.browser.test_queue import fits_the_width, log_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PAGE = "/settings/connections/"


@pytest.fixture
def page(sized_page):
    return sized_page


def test_an_owner_connects_square_and_edits_the_reason_map(
    live_server, page, axe, screenshot, owner, main_st
):
    log_in(page, live_server.url, owner, PAGE)
    assert axe(page) == []
    page.fill("input[name=signature_key]", "sq-key-from-the-dashboard")
    page.fill("textarea[name=locations]", "L8GQ2MAIN = main-st")
    page.get_by_role("button", name="Connect Square").click()
    page.wait_for_url(f"**{PAGE}")
    connection = SquareConnection.objects.get()
    url = page.locator("#notification-url").inner_text()
    assert url.endswith(f"/api/v1/connectors/square/{connection.token}/")
    assert fits_the_width(page)
    screenshot(page, "connections")
    assert axe(page) == []

    page.fill("textarea[name=entries]", "valet = parking_valet\nnever came = order_accuracy !")
    page.get_by_role("button", name="Save reason map").click()
    page.wait_for_url(f"**{PAGE}")
    assert [e["phrase"] for e in ReasonMap.objects.get().entries] == ["valet", "never came"]
    page.fill("textarea[name=entries]", "valet = soup")
    page.get_by_role("button", name="Save reason map").click()
    assert "entries[0].touchpoint" in page.locator("#reasons").inner_text()
    assert axe(page) == []

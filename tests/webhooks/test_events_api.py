"""GET /api/v1/events/: the organization's events in commit order, keyset-paged by `after`,
kept 30 days. Committed for real (transaction=True): the list shows only transactions that
have ended, so a cursor never steps over an event committed late."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from tests.webhooks.helpers import emit, make_endpoint
from webhooks.models import WebhookEvent
from webhooks.retention import purge_old

pytestmark = pytest.mark.django_db(transaction=True)


def page(api, url: str, *, count: int) -> dict:
    """The page once it holds `count` events. A committed event is listed when every older
    transaction on the server has ended: milliseconds here, unless another test run on the
    same server holds one open, so this waits (up to 30 s) rather than failing on that."""
    deadline = time.monotonic() + 30
    while True:
        body = api.get(url).json()
        if len(body["results"]) >= count or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_events_page_in_order_and_a_poller_keeps_its_place(api, org, receiver):
    make_endpoint(org, receiver.url)
    events = [emit(org, n=n) for n in range(5)]
    first = page(api, "/api/v1/events/?page_size=2", count=2)
    assert [e["id"] for e in first["results"]] == [e.webhook_id for e in events[:2]]
    assert first["results"][0] == {
        "id": events[0].webhook_id,
        "type": "case.opened",
        "timestamp": first["results"][0]["timestamp"],
        "data": {"case": {"id": 0, "headline": "Case 0"}, "customer": {"id": 0}},
    }
    second = page(api, first["next"], count=2)
    third = page(api, second["next"], count=1)
    assert [e["data"]["case"]["id"] for e in second["results"] + third["results"]] == [2, 3, 4]
    # At the end: nothing new, the same place to ask from again.
    empty = api.get(f"/api/v1/events/?after={third['after']}").json()
    assert empty["results"] == [] and empty["after"] == third["after"]
    later = emit(org, n=5)
    fresh = page(api, f"/api/v1/events/?after={third['after']}", count=1)["results"]
    assert [e["id"] for e in fresh] == [later.webhook_id]


def test_an_event_committed_late_is_not_stepped_over(api, org, receiver):
    """A transaction that took its id first but commits last: its event is held back from the
    list until it commits, then comes after the cursor rather than behind it."""
    make_endpoint(org, receiver.url)
    started, release = threading.Event(), threading.Event()

    def slow_writer():
        with transaction.atomic():
            emit(org, n=1)
            started.set()
            release.wait(10)
        connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    try:
        assert started.wait(10)
        emit(org, n=2)  # commits first
        held = api.get("/api/v1/events/").json()
        assert held["results"] == []  # n=2 waits behind the open transaction
    finally:
        release.set()
        writer.join(10)
    ids = [e["data"]["case"]["id"] for e in page(api, "/api/v1/events/", count=2)["results"]]
    assert ids == [1, 2]


def test_only_our_events_and_only_30_days(api, org, other_org, receiver):
    make_endpoint(org, receiver.url)
    make_endpoint(other_org, receiver.url)
    ours = emit(org, n=1)
    emit(other_org, n=2)
    old = emit(org, n=3)
    WebhookEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    listed = page(api, "/api/v1/events/", count=1)["results"]
    assert [e["id"] for e in listed] == [ours.webhook_id]
    assert purge_old() == {"events": 1, "attempts": 0}
    assert WebhookEvent.objects.count() == 2


@pytest.mark.parametrize("after", ["nonsense", "WzEsMl0x", "W10", "WyJhIiwxXQ"])
def test_a_cursor_we_did_not_give_out_is_a_400_naming_after(api, after):
    response = api.get(f"/api/v1/events/?after={after}")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "after"

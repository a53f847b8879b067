"""Delivery from the outbox: signed, retried on the schedule, given up, disabled, at least once.

Real PostgreSQL, real HTTP over loopback (tests/webhooks/receiver.py); time moves by passing
`now` to deliver_due. Every request is verified with the standardwebhooks package.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import WebhookVerificationError

from cxcore.services import EpisodeInput, record_episode
from tests.webhooks.helpers import body, emit, make_endpoint, verified
from webhooks.delivery import deliver_due
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from webhooks.rules import RETRY_DELAYS
from webhooks.services import rotate_secret

# Inside the test's transaction, as the claims' SKIP LOCKED does not mind; what needs a real
# commit (the after-commit publish) says so. Emails go out after commit: captured here.
pytestmark = pytest.mark.django_db


def test_a_committed_event_is_delivered_once_signed_with_the_standard_headers(org, receiver, owner):
    _endpoint, secret = make_endpoint(org, receiver.url)
    event = emit(org, n=7)
    run = deliver_due()
    assert (run.sent, run.delivered) == (1, 1)
    (request,) = receiver.requests
    document = verified(secret, request)
    assert document == {
        "type": "case.opened",
        "timestamp": event.occurred_at.isoformat(),
        "data": {"case": {"id": 7, "headline": "Case 7"}, "customer": {"id": 7}},
    }
    assert request.headers["webhook-id"] == event.webhook_id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 30
    assert request.headers["comeback-event-type"] == "case.opened"
    assert request.headers["comeback-attempt"] == "1"
    assert request.headers["content-type"] == "application/json"
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "delivered" and delivery.next_attempt_at is None
    assert deliver_due().sent == 0  # nothing twice


def test_a_rolled_back_change_sends_nothing(org, main_st, receiver):
    make_endpoint(org, receiver.url, ["episode.created"])
    with pytest.raises(RuntimeError), transaction.atomic():
        record_episode(
            organization=org, data=EpisodeInput(kind="visit", identifiers={"card": "A1"})
        )
        assert WebhookEvent.objects.count() == 1  # written with the episode...
        raise RuntimeError("the change fails after the episode was written")
    assert WebhookEvent.objects.count() == 0  # ...and gone with it
    assert deliver_due().sent == 0
    assert receiver.requests == []


def test_retries_follow_the_schedule_with_one_webhook_id_then_give_up(org, receiver, owner):
    receiver.always(500, b"down for maintenance")
    _endpoint, secret = make_endpoint(org, receiver.url)
    event = emit(org)
    now = timezone.now()
    deliver_due(now=now)
    for attempt, wait in enumerate(RETRY_DELAYS, start=2):
        delivery = WebhookDelivery.objects.get()
        assert delivery.next_attempt_at == now + wait, attempt
        assert deliver_due(now=now + wait - timedelta(seconds=1)).sent == 0  # not yet
        now += wait
        assert deliver_due(now=now).sent == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and delivery.next_attempt_at is None
    assert delivery.attempts == 10
    assert [r.headers["comeback-attempt"] for r in receiver.requests] == [
        str(n) for n in range(1, 11)
    ]
    assert {r.headers["webhook-id"] for r in receiver.requests} == {event.webhook_id}
    for request in receiver.requests:
        verified(secret, request)
    log = list(WebhookAttempt.objects.order_by("number"))
    assert [a.status_code for a in log] == [500] * 10
    assert log[0].response == "down for maintenance"


def test_retry_after_on_429_and_503_is_honoured(org, receiver):
    receiver.always(429, Retry_After="120")
    make_endpoint(org, receiver.url)
    emit(org)
    now = timezone.now()
    deliver_due(now=now)
    assert WebhookDelivery.objects.get().next_attempt_at == now + timedelta(seconds=120)
    receiver.always(503, Retry_After="3")
    deliver_due(now=now + timedelta(seconds=120))
    assert WebhookDelivery.objects.get().next_attempt_at == now + timedelta(seconds=123)


def test_410_gone_disables_the_endpoint_cancels_the_rest_and_tells_the_owners(
    org, receiver, owner, mailoutbox, django_capture_on_commit_callbacks
):
    receiver.always(410)
    endpoint, _ = make_endpoint(org, receiver.url)
    emit(org, n=1)
    emit(org, n=2)
    with django_capture_on_commit_callbacks(execute=True):
        run = deliver_due()
    assert run.sent == 1  # the second was cancelled before its turn
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is not None and "410" in endpoint.disabled_reason
    assert sorted(WebhookDelivery.objects.values_list("status", flat=True)) == [
        "cancelled",
        "failed",
    ]
    (mail,) = mailoutbox
    assert mail.to == [owner.email] and receiver.url in mail.subject
    # Later events are logged (GET /api/v1/events/) but not sent to a disabled endpoint.
    emit(org, n=3)
    assert WebhookEvent.objects.count() == 3
    assert deliver_due().sent == 0


def test_three_days_of_failures_disable_the_endpoint_and_email_the_owners(
    org, receiver, owner, manager, mailoutbox, django_capture_on_commit_callbacks
):
    receiver.always(500)
    endpoint, _ = make_endpoint(org, receiver.url)
    emit(org, n=1)
    start = timezone.now()
    deliver_due(now=start)
    endpoint.refresh_from_db()
    assert endpoint.failing_since == start
    emit(org, n=2)
    deliver_due(now=start + timedelta(days=3) - timedelta(minutes=1))
    assert WebhookEndpoint.objects.get().disabled_at is None
    assert mailoutbox == []
    emit(org, n=3)
    with django_capture_on_commit_callbacks(execute=True):
        deliver_due(now=start + timedelta(days=3))
    endpoint.refresh_from_db()
    assert endpoint.disabled_at == start + timedelta(days=3)
    assert endpoint.disabled_reason == "Every delivery failed for three days."
    assert not WebhookDelivery.objects.filter(status="pending").exists()
    (mail,) = mailoutbox
    assert mail.to == [owner.email]  # owners, not managers
    assert "three days" in mail.body and "/settings/webhooks/" in mail.body


def test_a_success_ends_the_failing_spell(org, receiver):
    receiver.always(500)
    endpoint, _ = make_endpoint(org, receiver.url)
    emit(org)
    now = timezone.now()
    deliver_due(now=now)
    receiver.always(200)
    deliver_due(now=now + timedelta(seconds=5))
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_a_receiver_down_for_an_hour_then_back_gets_every_event_exactly_once(org, receiver):
    """Beats every minute for an hour while it answers 503 (no Retry-After), events coming in
    all along; then it is back, the beats go on, and each event arrives once with a 2xx."""
    _endpoint, secret = make_endpoint(org, receiver.url)
    down = True
    from tests.webhooks.receiver import Answer

    receiver.answer = lambda _: Answer(503 if down else 200)
    start = timezone.now()
    events = []
    for minute in range(60):
        if minute % 7 == 0:
            events.append(emit(org, n=minute))
        deliver_due(now=start + timedelta(minutes=minute))
    assert not [r for r in receiver.requests if r.answered == 200]
    down = False
    for minute in range(60, 8 * 60, 5):
        deliver_due(now=start + timedelta(minutes=minute))
    taken = [r for r in receiver.requests if r.answered == 200]
    assert sorted(r.headers["webhook-id"] for r in taken) == sorted(e.webhook_id for e in events)
    for request in receiver.requests:
        verified(secret, request)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    sent = len(receiver.requests)
    deliver_due(now=start + timedelta(days=2))
    assert len(receiver.requests) == sent  # nothing more once taken


@pytest.mark.django_db(transaction=True)
def test_committed_with_the_broker_down_is_delivered_by_the_command(
    org, main_st, receiver, settings
):
    from cxcore import celery_app
    from tests.webhooks.receiver import closed_port_url

    settings.WEBHOOK_DELIVER_ON_COMMIT = True
    original = celery_app.conf.broker_write_url
    celery_app.conf.broker_write_url = closed_port_url().replace("http", "redis").split("/hook")[0]
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    try:
        make_endpoint(org, receiver.url, ["episode.created"])
        started = time.monotonic()
        episode = record_episode(
            organization=org, data=EpisodeInput(kind="visit", identifiers={"card": "B2"})
        ).episode
        assert time.monotonic() - started < 2  # the write does not wait on the broker
        time.sleep(0.5)  # the after-commit publish fails meanwhile, in its own thread
        assert receiver.requests == []
        call_command("deliver_webhooks")
    finally:
        celery_app.conf.broker_write_url = original
        celery_app._pool = None
        celery_app.amqp._producer_pool = None
    (request,) = receiver.requests
    assert body(request)["data"]["episode"]["id"] == episode.pk


def test_both_signatures_for_24_hours_after_a_rotation_then_only_the_new(org, receiver):
    endpoint, old = make_endpoint(org, receiver.url)
    now = timezone.now()
    new = rotate_secret(endpoint=endpoint, now=now)
    assert new != old and new.startswith("whsec_")
    emit(org, n=1)
    deliver_due(now=now + timedelta(hours=23))
    first = receiver.requests[-1]
    assert len(first.headers["webhook-signature"].split(" ")) == 2
    verified(new, first)
    verified(old, first)
    emit(org, n=2)
    deliver_due(now=now + timedelta(hours=24))
    second = receiver.requests[-1]
    assert len(second.headers["webhook-signature"].split(" ")) == 1
    verified(new, second)
    with pytest.raises(WebhookVerificationError):
        verified(old, second)


def test_a_worker_killed_after_its_claim_leaves_it_to_the_next_run(org, receiver):
    """A claim moves the delivery a lease ahead: a second run at once finds nothing (two
    workers never send one attempt), and after the lease it is sent again."""
    from webhooks.delivery import LEASE, _claim

    make_endpoint(org, receiver.url)
    event = emit(org)
    now = timezone.now()
    (claimed,) = _claim(now, 10)  # ...and the worker dies before sending
    assert _claim(now, 10) == []
    assert deliver_due(now=now + LEASE - timedelta(seconds=1)).sent == 0
    assert deliver_due(now=now + LEASE).delivered == 1
    (request,) = receiver.requests
    assert request.headers["webhook-id"] == event.webhook_id
    assert request.headers["comeback-attempt"] == "2"  # the lost claim counted as an attempt
    assert claimed.pk == WebhookDelivery.objects.get().pk


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_each_delivery_once(org, receiver):
    """Two delivery runs in parallel (two connections, as two workers): the claims skip each
    other's locked rows, so every event arrives exactly once."""
    import threading

    from django.db import connection

    make_endpoint(org, receiver.url)
    from webhooks import outbox

    events = outbox.emit_many(
        [outbox.Outgoing(org.pk, "case.opened", timezone.now(), {"n": n}) for n in range(120)]
    )
    runs = []

    def work():
        try:
            runs.append(deliver_due())
        finally:
            connection.close()

    workers = [threading.Thread(target=work) for _ in range(2)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(60)
    assert sum(run.delivered for run in runs) == 120
    assert all(run.delivered > 0 for run in runs), runs  # both took a share
    ids = sorted(r.headers["webhook-id"] for r in receiver.requests)
    assert ids == sorted(e.webhook_id for e in events)

"""Delivery by a real Celery worker on a real Redis: the task asked for after commit, and the
beat for whatever that request did not cover."""

from __future__ import annotations

import pytest

from cxcore.services import EpisodeInput, record_episode
from tests.recovery.test_worker import wait_until
from tests.webhooks.helpers import body, make_endpoint, verified

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_env(monkeypatch):
    """What the worker process reads: loopback receivers allowed, a fast beat."""
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    monkeypatch.setenv("WEBHOOK_DELIVER_EVERY_SECONDS", "1")


def test_a_worker_delivers_the_run_asked_for_after_commit(
    org, main_st, receiver, redis, worker, publish_to, worker_env, settings
):
    settings.WEBHOOK_DELIVER_ON_COMMIT = True
    publish_to(redis.url)
    worker(redis.url, beat=False)  # no beat: only the after-commit request can send it
    _endpoint, secret = make_endpoint(org, receiver.url, ["episode.created"])
    episode = record_episode(
        organization=org, data=EpisodeInput(kind="visit", identifiers={"card": "W1"})
    ).episode
    wait_until(lambda: len(receiver.requests) == 1, 60, "the worker to deliver")
    (request,) = receiver.requests
    assert verified(secret, request)["data"]["episode"]["id"] == episode.pk
    assert body(request)["type"] == "episode.created"


def test_the_beat_delivers_what_no_request_asked_for(
    org, main_st, receiver, redis, worker, worker_env, settings
):
    settings.WEBHOOK_DELIVER_ON_COMMIT = False  # as if the request to the broker was lost
    _endpoint, secret = make_endpoint(org, receiver.url, ["episode.created"])
    for n in range(3):
        record_episode(
            organization=org, data=EpisodeInput(kind="visit", identifiers={"card": f"B{n}"})
        )
    worker(redis.url)
    wait_until(lambda: len(receiver.requests) == 3, 60, "the beat to deliver")
    for request in receiver.requests:
        verified(secret, request)
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 3

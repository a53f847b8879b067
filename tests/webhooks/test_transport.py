"""The SSRF guard at send time, the connection pinned to the checked address, no redirects."""

from __future__ import annotations

import pytest

from tests.webhooks.helpers import ALL_EVENTS, emit
from tests.webhooks.receiver import Answer, running_receiver
from webhooks.delivery import deliver_due
from webhooks.models import WebhookAttempt, WebhookEndpoint
from webhooks.services import create_endpoint
from webhooks.transport import Sender, Target, TargetRefused, resolve

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    ["https://127.0.0.1/hook", "https://10.0.0.8/hook", "https://169.254.169.254/latest/meta-data",
     "https://[::1]/hook", "https://localhost/hook", "https://0.0.0.0/hook",
     "https://[::ffff:127.0.0.1]/hook", "http://93.184.215.14/hook"],
)  # fmt: skip
def test_private_targets_and_plain_http_are_refused_at_send_time(url):
    with pytest.raises(TargetRefused):
        resolve(url, allow_private=False)


def test_a_stored_url_whose_name_resolves_to_loopback_is_not_sent_to(org, receiver, settings):
    """An endpoint that passed the check when made (its name was public then, say) but whose
    name now resolves to 127.0.0.1: refused when sending, and nothing reaches the receiver."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    endpoint = WebhookEndpoint.objects.create(
        organization=org,
        url=f"https://localhost:{receiver.port}/hook",
        events=ALL_EVENTS,
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    emit(org)
    run = deliver_due()
    assert (run.sent, run.failed) == (1, 1)
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None
    assert "not a public address" in attempt.error
    assert receiver.requests == []
    assert endpoint.deliveries.get().status == "pending"  # retried: the DNS may change back


def test_the_connection_goes_to_the_checked_address_whatever_the_name_resolves_to(receiver):
    """The request names a host nobody can resolve; it still reaches the pinned address (so a
    second lookup, which DNS rebinding would exploit, never happens), with the URL's Host."""
    target = Target("http", "rebind.invalid", receiver.port, "127.0.0.1")
    sender = Sender(allow_private=True)
    try:
        response = sender._session(target).post(
            f"http://rebind.invalid:{receiver.port}/hook",
            data=b"{}",
            headers={"Host": target.host_header},
            timeout=5,
        )
    finally:
        sender.close()
    assert response.status_code == 200
    (request,) = receiver.requests
    assert request.headers["host"] == f"rebind.invalid:{receiver.port}"


def test_redirects_are_not_followed(org, receiver):
    with running_receiver() as elsewhere:
        receiver.answer = lambda _: Answer(302, b"", {"Location": elsewhere.url})
        create_endpoint(organization=org, url=receiver.url, events=ALL_EVENTS)
        emit(org)
        run = deliver_due()
        assert run.failed == 1
        assert WebhookAttempt.objects.get().status_code == 302
        assert elsewhere.requests == []


def test_a_slow_receiver_is_a_timeout_not_a_hang(org, receiver, monkeypatch):
    import time

    from webhooks import transport

    monkeypatch.setattr(transport, "TIMEOUT_SECONDS", 0.5)

    def slow(_):
        time.sleep(1.5)
        return Answer(200)

    receiver.answer = slow
    create_endpoint(organization=org, url=receiver.url, events=ALL_EVENTS)
    emit(org)
    started = time.monotonic()
    assert deliver_due().failed == 1
    assert time.monotonic() - started < 1.4
    assert "No answer within" in WebhookAttempt.objects.get().error

"""Signatures as Standard Webhooks defines them, checked by its own package (standardwebhooks)."""

import base64
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from webhooks.signing import body_of, new_secret, sign, signature_header

# The README's worked example (Standard Webhooks' own test vector).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_readme_vector_is_what_we_and_standardwebhooks_compute():
    assert sign(SECRET, msg_id=MSG_ID, timestamp=TIMESTAMP, body=BODY) == SIGNATURE
    theirs = Webhook(SECRET).sign(MSG_ID, datetime.fromtimestamp(TIMESTAMP, UTC), BODY.decode())
    assert theirs == SIGNATURE


def test_a_new_secret_is_whsec_and_32_random_bytes():
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert new_secret() != secret


def test_a_signed_request_verifies_with_each_live_secret_and_not_another():
    old, new = new_secret(), new_secret()
    now = int(datetime.now(UTC).timestamp())
    body = body_of(type="case.opened", timestamp="2026-12-01T10:00:00+00:00", data={"a": "é"})
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": signature_header([new, old], msg_id="msg_1", timestamp=now, body=body),
    }
    assert Webhook(new).verify(body, headers)["data"] == {"a": "é"}
    assert Webhook(old).verify(body, headers)["type"] == "case.opened"
    import pytest
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)

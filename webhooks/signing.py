"""Standard Webhooks 1.0 signing: secrets, the body we sign, and the signature header."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """`whsec_` and the base64 of 32 random bytes, as Standard Webhooks libraries expect."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,` and the base64 HMAC-SHA256 of "{id}.{timestamp}.{body}" under the secret."""
    message = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: list[str], *, msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature per live secret, space-separated: a verifier accepts any that matches."""
    return " ".join(sign(s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets_)


def body_of(*, type: str, timestamp: str, data: dict[str, Any]) -> bytes:
    """The request body, byte for byte the same on every attempt of an event."""
    document = {"type": type, "timestamp": timestamp, "data": data}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()

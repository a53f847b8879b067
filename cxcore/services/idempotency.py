"""Idempotency keys: the first response to a key is stored with its effect and replayed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import (
    ConflictError,
    IdempotencyKeyReused,
)
from cxcore.models import (
    IdempotencyRecord,
)

# --- idempotency -----------------------------------------------------------------------------


@dataclass
class IdempotentResponse:
    status: int
    body: Any
    replayed: bool


def request_fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def run_idempotent(
    *,
    scope: str,
    key: str,
    fingerprint: str,
    action: Callable[[], tuple[int, Any]],
    now: datetime | None = None,
) -> IdempotentResponse:
    """Run `action` once per (scope, key); later calls with the same body replay its response.

    The record is inserted first and committed with the action's effects. A concurrent request
    with the same key blocks on the unique index until the first commits, then replays it; if
    the first failed and rolled back, the second simply runs. A different body is refused.
    """
    now = now or timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    scope=scope, key=key, request_fingerprint=fingerprint, created_at=now
                )
        except IntegrityError:
            record = IdempotencyRecord.objects.get(scope=scope, key=key)
            if record.request_fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was used with a different request.",
                    field="Idempotency-Key",
                ) from None
            if record.response_status is None:
                raise ConflictError(
                    "A request with this Idempotency-Key is still in progress.",
                    field="Idempotency-Key",
                    code="in_progress",
                ) from None
            return IdempotentResponse(record.response_status, record.response_body, True)
        status, body = action()
        record.response_status, record.response_body = status, body
        record.save(update_fields=["response_status", "response_body"])
        return IdempotentResponse(status, body, False)


def purge_idempotency_records(*, now: datetime | None = None) -> int:
    cutoff = (now or timezone.now()) - settings.IDEMPOTENCY_KEY_TTL
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted

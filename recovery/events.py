"""The case history. Every CaseEvent is built here, so the shape of each type stays in one place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from accounts.models import ApiKey, Location, User
from cxcore.bulk import insert_rows
from recovery.models import CaseEvent, CaseEventType, RecoveryCase
from recovery.outbound import emit_case_events


def save_case_events(events: Sequence[CaseEvent], *, now: datetime) -> None:
    """The one way case history is saved: the rows, and in the same transaction the webhooks
    they stand for (recovery.outbound), so other systems hear of exactly what was committed.
    A test (tests/recovery/test_case_events_saved_once.py) holds every caller to it."""
    if not events:
        return
    events = list(events)
    with transaction.atomic(savepoint=False):
        insert_rows(CaseEvent, events)
        emit_case_events(events, now=now)


def case_event(
    case: RecoveryCase,
    type: CaseEventType | str,
    *,
    at: datetime,
    user: User | None = None,
    api_key: ApiKey | None = None,
    location: Location | None = None,
    **data: Any,
) -> CaseEvent:
    """An unsaved event, saved with others by save_case_events."""
    if user is not None and not user.is_authenticated:
        user = None
    return CaseEvent(
        case=case,
        type=type,
        at=at,
        actor_user=user,
        actor_api_key=api_key,
        location=location,
        data=data,
    )


@dataclass(frozen=True)
class Actor:
    """Who acts on a case: a staff member, a POS key, or the system (both None)."""

    user: User | None = None
    api_key: ApiKey | None = None
    location: Location | None = None


SYSTEM = Actor()


def actor_event(
    case: RecoveryCase,
    type: CaseEventType | str,
    actor: Actor,
    *,
    at: datetime,
    where: bool = False,
    **data: Any,
) -> CaseEvent:
    """An event by `actor`; `where` records the actor's location (things done at a till)."""
    location = actor.location if where else None
    return case_event(
        case, type, at=at, user=actor.user, api_key=actor.api_key, location=location, **data
    )

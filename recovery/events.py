"""The case history. Every CaseEvent is built here, so the shape of each type stays in one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accounts.models import ApiKey, Location, User
from recovery.models import CaseEvent, CaseEventType, RecoveryCase


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
    """An unsaved event: services save it, sweeps bulk-create many at once."""
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

"""What the narrative tells other systems: episode.created, customer.erased (webhooks.outbox).

Called inside the transaction that writes the change. An episode's payload holds ids, kind,
time, place, experience and touchpoints: no summary (free text can hold anything) and no
identifiers (no contact details leave by webhook).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cxcore.models import Episode
from webhooks import outbox
from webhooks.vocabulary import EventType


def episode_data(episode: Episode) -> dict:
    location = episode.location if episode.location_id else None
    return {
        "episode": {
            "id": episode.pk,
            "kind": episode.kind,
            "occurred_at": episode.occurred_at.isoformat(),
            "source": episode.source,
            "experience": episode.experience,
            "touchpoints": [t.get("code") for t in episode.touchpoints or []],
            "location": location.slug if location is not None else None,
        },
        "customer": {"id": episode.customer_id},
    }


def emit_episodes_created(*, organization_id: int, episodes: Sequence[Episode]) -> None:
    """One episode.created per new episode, in the outbox's fixed handful of queries."""
    if not episodes:
        return
    outbox.emit_many(
        [
            outbox.Outgoing(
                organization_id,
                EventType.EPISODE_CREATED,
                episode.occurred_at,
                episode_data(episode),
                customer_id=episode.customer_id,
            )
            for episode in episodes
        ]
    )


def emit_customer_erased(*, organization_id: int, customer_id: int, at: datetime) -> None:
    """Tell subscribers to forget the customer too; their earlier events are scrubbed."""
    outbox.scrub_customer(customer_id=customer_id)
    outbox.emit(
        organization_id=organization_id,
        type=EventType.CUSTOMER_ERASED,
        at=at,
        data={"customer": {"id": customer_id}},
    )


def emit_customer_merged(
    *, organization_id: int, into_id: int, duplicate_id: int, at: datetime
) -> None:
    outbox.emit(
        organization_id=organization_id,
        type=EventType.CUSTOMER_MERGED,
        at=at,
        data={"customer": {"id": into_id}, "merged": {"id": duplicate_id}},
        customer_id=into_id,
    )

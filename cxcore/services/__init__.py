"""Every change to the narrative goes through these services; each owns its transaction."""

from cxcore.services.bulk_episodes import BulkItemResult, record_episodes_bulk
from cxcore.services.customers import (
    find_customer_id,
    identifier_owners,
    identify_customer_id,
    identify_many,
    normalize_identifiers,
    record_customer_edit,
    update_customer,
)
from cxcore.services.episodes import (
    EpisodeInput,
    LockedNarrative,
    RecordedEpisode,
    ResolvedExperience,
    correct_experience,
    lock_customers,
    narrative_from_episodes,
    rebuild_narrative,
    rebuild_narratives,
    record_episode,
    resolve_experience,
    save_narrative,
    validate_occurred_at,
)
from cxcore.services.idempotency import (
    IdempotentResponse,
    purge_idempotency_records,
    request_fingerprint,
    run_idempotent,
)

__all__ = [
    "BulkItemResult",
    "EpisodeInput",
    "IdempotentResponse",
    "LockedNarrative",
    "RecordedEpisode",
    "ResolvedExperience",
    "correct_experience",
    "find_customer_id",
    "identifier_owners",
    "identify_customer_id",
    "identify_many",
    "lock_customers",
    "narrative_from_episodes",
    "normalize_identifiers",
    "purge_idempotency_records",
    "rebuild_narrative",
    "rebuild_narratives",
    "record_customer_edit",
    "record_episode",
    "record_episodes_bulk",
    "request_fingerprint",
    "resolve_experience",
    "run_idempotent",
    "save_narrative",
    "update_customer",
    "validate_occurred_at",
]

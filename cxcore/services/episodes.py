"""The only way into the narrative: record an episode and keep the state and due times current."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.errors import (
    InvalidInput,
    NotFoundError,
)
from accounts.models import ApiKey, Location, Organization, User
from accounts.tenancy import refuse_archived
from cxcore.bulk import update_rows
from cxcore.models import (
    Customer,
    Episode,
    ExperienceCorrection,
    ExperienceSource,
)
from cxcore.outbound import emit_episodes_created
from cxcore.rules import (
    USUAL_ORDER_WINDOW,
    CaseMarks,
    DuePolicy,
    NarrativeState,
    due_times,
    experience_from_rating,
    fold_narrative,
    infer_experience,
    spend_of,
    usual_order_from,
    validate_experience,
)
from cxcore.services.customers import identify_customer_id, normalize_identifiers
from cxcore.services.erased import refuse_erased
from cxcore.text_rules import check_free_text, check_name

# An episode may be logged with a slightly fast POS clock, but not from the future.
FUTURE_TOLERANCE = timedelta(minutes=10)
EARLIEST_OCCURRED_AT = datetime(2000, 1, 1, tzinfo=UTC)


# --- episodes --------------------------------------------------------------------------------


@dataclass
class ResolvedExperience:
    experience: int | None = None
    source: str = ""
    rating_scale: str = ""
    rating_value: int | None = None


def resolve_experience(
    *, kind: str, summary: str, experience: int | None, rating: dict | None
) -> ResolvedExperience:
    """Explicit value, else the rating mapped, else inferred from the text, else none."""
    if experience is not None and rating:
        raise InvalidInput(
            "Give either experience or rating, not both.", field="experience", code="ambiguous"
        )
    if experience is not None:
        validate_experience(experience)
        return ResolvedExperience(experience, ExperienceSource.EXPLICIT)
    if rating:
        scale, value = rating["scale"], rating["value"]
        return ResolvedExperience(
            experience_from_rating(scale, value), ExperienceSource.RATING, scale, value
        )
    inferred = infer_experience(kind, summary)
    if inferred is not None:
        return ResolvedExperience(inferred, ExperienceSource.INFERRED)
    return ResolvedExperience()


def check_episode_text(data: EpisodeInput) -> None:
    """The name, the items' names (the till shows the usual order) and the summary may not
    hold what could spoof them (cxcore.text_rules)."""
    if data.name:
        check_name(data.name, field="customer.name")
    for index, item in enumerate(data.items):
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str):
            check_name(name, field=f"items[{index}].name")
    if data.summary:
        check_free_text(data.summary, field="summary")


def check_episode_location(organization: Organization, location: Location | None) -> None:
    """Every episode's location, whichever way it arrives (the API resolves slugs through the
    tenant; the till, a case's follow-up, a connector or an import pass a Location): the
    organization's own, and not archived, which keeps its history and takes nothing new."""
    if location is None:
        return
    if location.organization_id != organization.pk:
        raise NotFoundError("No such location.", field="location")
    refuse_archived(location)


def validate_occurred_at(occurred_at: datetime, *, now: datetime) -> None:
    if timezone.is_naive(occurred_at):
        raise InvalidInput(
            "Give a time zone offset, e.g. 2026-05-01T12:30:00Z.", field="occurred_at"
        )
    if occurred_at > now + FUTURE_TOLERANCE:
        raise InvalidInput("Must not be in the future.", field="occurred_at", code="in_future")
    if occurred_at < EARLIEST_OCCURRED_AT:
        raise InvalidInput("Must be after 2000-01-01.", field="occurred_at", code="too_old")


@dataclass
class EpisodeInput:
    """One episode to record, already parsed; the customer is resolved by the service."""

    kind: str
    occurred_at: datetime | None = None
    customer_id: int | None = None
    identifiers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    location: Location | None = None
    source: str = "api"
    external_id: str = ""
    summary: str = ""
    touchpoints: list[dict] = field(default_factory=list)
    items: list[dict] = field(default_factory=list)
    experience: int | None = None
    rating: dict | None = None


@dataclass
class RecordedEpisode:
    episode: Episode
    created: bool


def _build_episode(
    *,
    organization: Organization,
    customer_id: int,
    data: EpisodeInput,
    occurred_at: datetime,
    resolved: ResolvedExperience,
    author_user: User | None,
    author_api_key: ApiKey | None,
) -> Episode:
    return Episode(
        organization=organization,
        customer_id=customer_id,
        location=data.location,
        kind=data.kind,
        occurred_at=occurred_at,
        source=data.source,
        external_id=data.external_id,
        summary=data.summary,
        touchpoints=data.touchpoints,
        items=data.items,
        experience=resolved.experience,
        experience_source=resolved.source,
        rating_scale=resolved.rating_scale,
        rating_value=resolved.rating_value,
        author_user=author_user,
        author_api_key=author_api_key,
    )


def _existing_by_external_id(organization: Organization, source: str, external_id: str):
    return (
        Episode.objects.for_org(organization)
        .filter(source=source, external_id=external_id)
        .select_related("location")
        .first()
    )


def record_episode(
    *,
    organization: Organization,
    data: EpisodeInput,
    author_user: User | None = None,
    author_api_key: ApiKey | None = None,
    now: datetime | None = None,
) -> RecordedEpisode:
    """The only way into the narrative: identify, insert, and keep the state current.

    A repeated (source, external_id) returns the first episode with created=False.
    """
    now = now or timezone.now()
    occurred_at = data.occurred_at or now
    validate_occurred_at(occurred_at, now=now)
    check_episode_location(organization, data.location)
    # Validate and map everything before touching the database: a rejected write changes nothing.
    normalized = normalize_identifiers(organization=organization, identifiers=data.identifiers)
    check_episode_text(data)
    resolved = resolve_experience(
        kind=data.kind, summary=data.summary, experience=data.experience, rating=data.rating
    )
    with transaction.atomic():
        if data.external_id:
            existing = _existing_by_external_id(organization, data.source, data.external_id)
            if existing is not None:
                return RecordedEpisode(existing, created=False)
        if data.customer_id is not None:
            customer_id = data.customer_id
        else:
            customer_id, _ = identify_customer_id(
                organization=organization,
                normalized=normalized,
                name=data.name,
                by_user=author_user,
                by_api_key=author_api_key,
            )
        locked = _lock_narrative(customer_id, organization=organization)
        if data.customer_id is not None:  # by identifier, an erased customer is never found
            refuse_erased(organization_id=organization.pk, customer_ids=[customer_id])
        episode = _build_episode(
            organization=organization,
            customer_id=customer_id,
            data=data,
            occurred_at=occurred_at,
            resolved=resolved,
            author_user=author_user,
            author_api_key=author_api_key,
        )
        if data.external_id:
            try:
                # Savepoint: a concurrent retry with the same external id loses only this insert.
                with transaction.atomic():
                    episode.save(force_insert=True)
            except IntegrityError:
                existing = _existing_by_external_id(organization, data.source, data.external_id)
                if existing is None:
                    raise
                return RecordedEpisode(existing, created=False)
        else:
            episode.save(force_insert=True)
        _fold_into_narrative(customer_id, locked, [episode], now=now)
        emit_episodes_created(organization_id=organization.pk, episodes=[episode])
    return RecordedEpisode(episode, created=True)


@dataclass
class LockedNarrative:
    """A customer's row, locked: its narrative state and what the due times depend on."""

    state: NarrativeState
    marks: CaseMarks
    policy: DuePolicy
    recovery_due_at: datetime | None = None
    care_due_at: datetime | None = None


_MARK_FIELDS = [f.name for f in dataclass_fields(CaseMarks)]
# What a fold writes back: the state and the due times derived from it.
_STATE_COLUMNS = [*NarrativeState.field_names(), "recovery_due_at", "care_due_at"]
_POLICY_FIELDS = {
    "grace": "organization__recovery_grace_period",
    "care_min_visits": "organization__care_min_visits",
    "care_gap_factor": "organization__care_gap_factor",
}
_LOCKED_FIELDS = [
    "id",
    *NarrativeState.field_names(),
    *_MARK_FIELDS,
    *_POLICY_FIELDS.values(),
    "recovery_due_at",
    "care_due_at",
]


def _locked_from_row(row: dict) -> LockedNarrative:
    policy = {name: row[field] for name, field in _POLICY_FIELDS.items()}
    policy["care_gap_factor"] = float(policy["care_gap_factor"])
    return LockedNarrative(
        state=NarrativeState(**{k: row[k] for k in NarrativeState.field_names()}),
        marks=CaseMarks(**{k: row[k] for k in _MARK_FIELDS}),
        policy=DuePolicy(**policy),
        recovery_due_at=row["recovery_due_at"],
        care_due_at=row["care_due_at"],
    )


def lock_customers(customer_ids: Iterable[int]) -> dict[int, LockedNarrative]:
    """Lock customer rows in primary-key order (so two writers cannot deadlock) and read them.

    FOR NO KEY UPDATE serialises writers of a customer's state without blocking the key-share
    locks that inserting episodes (foreign key checks) takes on the same rows. Every path that
    changes a customer's state or case marks goes through here first.
    """
    rows = (
        Customer.objects.select_for_update(no_key=True, of=("self",))
        .filter(pk__in=set(customer_ids))
        .order_by("pk")
        .values(*_LOCKED_FIELDS)
    )
    return {row["id"]: _locked_from_row(row) for row in rows}


def _lock_narrative(
    customer_id: int, *, organization: Organization | None = None
) -> LockedNarrative:
    """Lock one customer's row; scoped to the organization when given."""
    qs = Customer.objects.select_for_update(no_key=True, of=("self",)).filter(pk=customer_id)
    if organization is not None:
        qs = qs.for_org(organization)
    row = qs.values(*_LOCKED_FIELDS).first()
    if row is None:
        raise NotFoundError("No such customer.", field="customer.id")
    return _locked_from_row(row)


def save_narrative(customer_id: int, locked: LockedNarrative, *, now: datetime, **extra) -> None:
    """Write the state, the due times derived from it, and any case marks changed in `extra`."""
    marks = replace(locked.marks, **{k: v for k, v in extra.items() if k in _MARK_FIELDS})
    recovery_due, care_due = due_times(locked.state, marks, locked.policy)
    Customer.objects.filter(pk=customer_id).update(
        **locked.state.as_dict(),
        **extra,
        recovery_due_at=recovery_due,
        care_due_at=care_due,
        updated_at=now,
    )


def _recent_item_lists(customer_id: int) -> list[list[dict]]:
    return list(
        Episode.objects.filter(customer_id=customer_id)
        .exclude(items=[])
        .order_by("-occurred_at", "-id")
        .values_list("items", flat=True)[:USUAL_ORDER_WINDOW]
    )


def _recent_item_lists_of(customer_ids: Collection[int]) -> dict[int, list[list[dict]]]:
    """`_recent_item_lists` for many customers in one round trip (the timeline index serves
    each customer's newest episodes; a long history costs no more than a short one)."""
    found: dict[int, list[list[dict]]] = {customer_id: [] for customer_id in customer_ids}
    if not found:
        return found
    if connection.vendor != "postgresql":
        return {customer_id: _recent_item_lists(customer_id) for customer_id in found}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.id, e.items FROM unnest(%s::bigint[]) AS c(id)
            CROSS JOIN LATERAL (
                SELECT items, occurred_at, id FROM cxcore_episode
                WHERE customer_id = c.id AND items <> '[]'::jsonb
                ORDER BY occurred_at DESC, id DESC LIMIT %s
            ) e
            ORDER BY c.id, e.occurred_at DESC, e.id DESC
            """,
            [sorted(found), USUAL_ORDER_WINDOW],
        )
        for customer_id, items in cursor.fetchall():
            # Django leaves jsonb as text on raw cursors (JSONField decodes it in the ORM).
            found[customer_id].append(json.loads(items) if isinstance(items, str) else items)
    return found


def _fold_into_narrative(
    customer_id: int, locked: LockedNarrative, episodes: Sequence[Episode], *, now: datetime
) -> None:
    _fold_into_narratives({customer_id: locked}, {customer_id: episodes}, now=now)


def _fold_into_narratives(
    locked: dict[int, LockedNarrative],
    episodes_by_customer: dict[int, Sequence[Episode]],
    *,
    now: datetime,
) -> None:
    """Fold new episodes into their (locked) customers' state and write each row, its due
    times with it, in one statement."""
    with_items = [c for c, batch in episodes_by_customer.items() if any(e.items for e in batch)]
    item_lists = _recent_item_lists_of(with_items)
    rows = []
    for customer_id in sorted(episodes_by_customer):
        row = locked[customer_id]
        for episode in episodes_by_customer[customer_id]:
            row.state.apply(
                episode_id=episode.pk,
                kind=episode.kind,
                occurred_at=episode.occurred_at,
                experience=episode.experience,
                spend=spend_of(episode.items),
            )
        if customer_id in item_lists:
            row.state.usual_order = usual_order_from(item_lists[customer_id])
        due = due_times(row.state, row.marks, row.policy)
        rows.append(_state_row(customer_id, row.state, due, updated_at=now))
    update_rows(Customer, rows, [*_STATE_COLUMNS, "updated_at"])


def _state_row(
    customer_id: int, state: NarrativeState, due: tuple[datetime | None, datetime | None], **extra
) -> Customer:
    """An unsaved customer row holding a narrative state and its due times, for update_rows."""
    customer = Customer(pk=customer_id, recovery_due_at=due[0], care_due_at=due[1], **extra)
    for name, value in state.as_dict().items():
        setattr(customer, name, value)
    return customer


# --- corrections and rebuilds ----------------------------------------------------------------


def correct_experience(
    *,
    episode: Episode,
    experience: int | None,
    reason: str = "",
    by_user: User | None = None,
    by_api_key: ApiKey | None = None,
    now: datetime | None = None,
) -> Episode:
    """Staff override an episode's experience; the correction is kept and the state rebuilt."""
    now = now or timezone.now()
    if experience is not None:
        validate_experience(experience)
    check_free_text(reason, field="reason")
    with transaction.atomic():
        _lock_narrative(episode.customer_id)
        # A reason is text about the person: an erased customer's episodes take none.
        refuse_erased(
            organization_id=episode.organization_id,
            customer_ids=[episode.customer_id],
            field="episode",
        )
        episode = Episode.objects.select_for_update(no_key=True).get(pk=episode.pk)
        ExperienceCorrection.objects.create(
            episode=episode,
            previous_experience=episode.experience,
            previous_source=episode.experience_source,
            experience=experience,
            reason=reason,
            corrected_by=by_user,
            corrected_by_api_key=by_api_key,
            corrected_at=now,
        )
        episode.experience = experience
        episode.experience_source = ExperienceSource.CORRECTED
        episode.save(update_fields=["experience", "experience_source"])
        rebuild_narrative(customer_id=episode.customer_id, now=now)
    return episode


def narrative_from_episodes(customer_id: int) -> NarrativeState:
    rows = Episode.objects.filter(customer_id=customer_id).values_list(
        "id", "kind", "occurred_at", "experience", "items"
    )
    return fold_narrative(rows.iterator(), _recent_item_lists(customer_id))


def rebuild_narrative(*, customer_id: int, now: datetime | None = None) -> bool:
    """Recompute one customer's state and due times from the episodes; True if they drifted."""
    with transaction.atomic():
        locked = _lock_narrative(customer_id)
        fresh = narrative_from_episodes(customer_id)
        if fresh == locked.state and due_times(fresh, locked.marks, locked.policy) == (
            locked.recovery_due_at,
            locked.care_due_at,
        ):
            return False
        locked.state = fresh
        save_narrative(customer_id, locked, now=now or timezone.now())
        return True


def rebuild_narratives(
    *, organization: Organization | None = None, batch_size: int = 2000
) -> tuple[int, int]:
    """Recompute every customer's state and due times from their episodes, in bounded
    batches; returns (checked, repaired).

    Each batch locks its customers (in primary-key order), reads all their episodes in one
    query, folds them in memory and writes back only the rows that drifted, in one statement.
    """
    checked = repaired = 0
    last_id = 0
    base = (
        Customer.objects.all() if organization is None else Customer.objects.for_org(organization)
    )
    while True:
        with transaction.atomic():
            ids = list(
                base.filter(pk__gt=last_id).order_by("pk").values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return checked, repaired
            repaired += _rebuild_batch(ids)
        checked += len(ids)
        last_id = ids[-1]


def _rebuild_batch(customer_ids: list[int]) -> int:
    locked = lock_customers(customer_ids)
    episodes: dict[int, list[tuple]] = {customer_id: [] for customer_id in customer_ids}
    rows = (
        Episode.objects.filter(customer_id__in=customer_ids)
        .order_by("customer_id", "-occurred_at", "-id")
        .values_list("customer_id", "id", "kind", "occurred_at", "experience", "items")
    )
    for customer_id, *episode in rows.iterator(chunk_size=10_000):
        episodes[customer_id].append(tuple(episode))
    drifted = []
    for customer_id, row in locked.items():
        mine = episodes[customer_id]  # newest first
        item_lists = [items for *_, items in mine if items][:USUAL_ORDER_WINDOW]
        fresh = fold_narrative(mine, item_lists)
        due = due_times(fresh, row.marks, row.policy)
        if fresh == row.state and due == (row.recovery_due_at, row.care_due_at):
            continue
        drifted.append(_state_row(customer_id, fresh, due))
    update_rows(Customer, drifted, _STATE_COLUMNS)
    return len(drifted)

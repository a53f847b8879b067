"""Every change to the narrative goes through here; each function owns its transaction."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.errors import (
    ConflictError,
    DomainError,
    IdempotencyKeyReused,
    InvalidInput,
    NotFoundError,
)
from accounts.models import ApiKey, Location, Organization, User
from cxcore.bulk import update_rows
from cxcore.models import (
    Customer,
    Episode,
    ExperienceCorrection,
    ExperienceSource,
    IdempotencyRecord,
    Identifier,
    IdentifierKind,
)
from cxcore.rules import (
    USUAL_ORDER_WINDOW,
    CaseMarks,
    DuePolicy,
    NarrativeState,
    due_times,
    experience_from_rating,
    fold_narrative,
    infer_experience,
    normalize_identifier,
    spend_of,
    usual_order_from,
    validate_experience,
)

# An episode may be logged with a slightly fast POS clock, but not from the future.
FUTURE_TOLERANCE = timedelta(minutes=10)
EARLIEST_OCCURRED_AT = datetime(2000, 1, 1, tzinfo=UTC)
# Precedence when identifiers point at different customers: the most specific wins.
IDENTIFIER_PRECEDENCE = (
    IdentifierKind.POS_ID,
    IdentifierKind.CARD,
    IdentifierKind.PHONE,
    IdentifierKind.EMAIL,
)


# --- identification --------------------------------------------------------------------------


def normalize_identifiers(
    *, organization: Organization, identifiers: dict[str, str], field_prefix: str = "customer."
) -> dict[str, str]:
    normalized = {}
    for kind, raw in identifiers.items():
        if raw is None or raw == "":
            continue
        try:
            normalized[kind] = normalize_identifier(kind, raw, country=organization.country)
        except InvalidInput as exc:
            exc.field = f"{field_prefix}{kind}"
            raise
    return normalized


def _identifier_filter(organization: Organization, normalized: dict[str, str]) -> Q:
    match = Q()
    for kind, value in normalized.items():
        match |= Q(kind=kind, value=value)
    return Q(organization=organization) & match


def identifier_owners(*, organization: Organization, normalized: dict[str, str]) -> dict[str, int]:
    """{kind: customer id} for the identifiers already known."""
    if not normalized:
        return {}
    return dict(
        Identifier.objects.filter(_identifier_filter(organization, normalized)).values_list(
            "kind", "customer_id"
        )
    )


def _preferred_owner(owners: dict[str, int]) -> int | None:
    for kind in IDENTIFIER_PRECEDENCE:
        if kind in owners:
            return owners[kind]
    return None


def find_customer_id(*, organization: Organization, normalized: dict[str, str]) -> int | None:
    """The customer the identifiers point at; the most specific identifier wins a disagreement."""
    return _preferred_owner(identifier_owners(organization=organization, normalized=normalized))


def identify_customer_id(
    *, organization: Organization, normalized: dict[str, str], name: str = ""
) -> tuple[int, bool]:
    """Find the customer by any (normalised) identifier, learn the new ones, or create them.

    Returns (customer id, created). Runs inside the caller's transaction; the common case, a
    known customer with nothing new, costs one query.
    """
    if not normalized:
        raise InvalidInput(
            "Give the customer's id or at least one of phone, email, card, pos_id.",
            field="customer",
            code="required",
        )
    owners = identifier_owners(organization=organization, normalized=normalized)
    customer_id = _preferred_owner(owners)
    if customer_id is None:
        try:
            # A savepoint: a concurrent request creating the same person makes only this fail.
            with transaction.atomic():
                customer = Customer.objects.create(organization=organization, name=name[:200])
                # (kind, value) order everywhere, so concurrent writers queue instead of deadlock.
                Identifier.objects.bulk_create(
                    Identifier(organization=organization, customer=customer, kind=k, value=v)
                    for k, v in sorted(normalized.items())
                )
            return customer.pk, True
        except IntegrityError:
            owners = identifier_owners(organization=organization, normalized=normalized)
            customer_id = _preferred_owner(owners)
            if customer_id is None:
                raise
    unknown = {k: v for k, v in normalized.items() if k not in owners}
    if unknown:
        # An identifier owned by someone else stays theirs (merging is explicit), and
        # ignore_conflicts makes a concurrent learner harmless.
        Identifier.objects.bulk_create(
            [
                Identifier(organization=organization, customer_id=customer_id, kind=k, value=v)
                for k, v in sorted(unknown.items())
            ],
            ignore_conflicts=True,
        )
    if name:
        Customer.objects.filter(pk=customer_id, name="").update(name=name[:200])
    return customer_id, False


def identify_customer(
    *,
    organization: Organization,
    identifiers: dict[str, str],
    name: str = "",
    create: bool = True,
) -> tuple[Customer | None, bool]:
    """Find the customer by any raw identifier (or create them); returns (customer, created)."""
    normalized = normalize_identifiers(organization=organization, identifiers=identifiers)
    if not create:
        customer_id = find_customer_id(organization=organization, normalized=normalized)
        customer = Customer.objects.filter(pk=customer_id).first() if customer_id else None
        return customer, False
    customer_id, created = identify_customer_id(
        organization=organization, normalized=normalized, name=name
    )
    return Customer.objects.get(pk=customer_id), created


@transaction.atomic
def update_customer(*, customer: Customer, **changes: Any) -> Customer:
    allowed = {"name", "notes"}
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidInput("Not editable.", field=sorted(unknown)[0], code="read_only")
    for name, value in changes.items():
        setattr(customer, name, value)
    customer.save(update_fields=[*changes, "updated_at"])
    return customer


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
    if data.location is not None and data.location.organization_id != organization.pk:
        raise NotFoundError("No such location.", field="location")
    # Validate and map everything before touching the database: a rejected write changes nothing.
    normalized = normalize_identifiers(organization=organization, identifiers=data.identifiers)
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
                organization=organization, normalized=normalized, name=data.name
            )
        locked = _lock_narrative(customer_id, organization=organization)
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
        **asdict(locked.state),
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


def _fold_into_narrative(
    customer_id: int, locked: LockedNarrative, episodes: Sequence[Episode], *, now: datetime
) -> None:
    for episode in episodes:
        locked.state.apply(
            episode_id=episode.pk,
            kind=episode.kind,
            occurred_at=episode.occurred_at,
            experience=episode.experience,
            spend=spend_of(episode.items),
        )
    if any(episode.items for episode in episodes):
        locked.state.usual_order = usual_order_from(_recent_item_lists(customer_id))
    save_narrative(customer_id, locked, now=now)


# --- bulk ------------------------------------------------------------------------------------


@dataclass
class BulkItemResult:
    status: str  # created | duplicate | error
    episode: Episode | None = None
    error: DomainError | None = None


def record_episodes_bulk(
    *,
    organization: Organization,
    items: Sequence[EpisodeInput | DomainError],
    author_user: User | None = None,
    author_api_key: ApiKey | None = None,
    now: datetime | None = None,
) -> list[BulkItemResult]:
    """Record many episodes in one transaction; a bad item fails alone, not the batch.

    Items that failed parsing arrive as their DomainError and are reported back in place.
    """
    now = now or timezone.now()
    results: list[BulkItemResult | None] = [None] * len(items)
    pending: list[tuple[int, EpisodeInput, datetime]] = []
    resolved: dict[int, ResolvedExperience] = {}
    for index, item in enumerate(items):
        if isinstance(item, DomainError):
            results[index] = BulkItemResult("error", error=item)
            continue
        try:
            occurred_at = item.occurred_at or now
            validate_occurred_at(occurred_at, now=now)
            resolved[index] = resolve_experience(
                kind=item.kind, summary=item.summary, experience=item.experience, rating=item.rating
            )
            if item.identifiers:
                item.identifiers = normalize_identifiers(
                    organization=organization, identifiers=item.identifiers
                )
        except DomainError as exc:
            results[index] = BulkItemResult("error", error=exc)
            continue
        pending.append((index, item, occurred_at))

    with transaction.atomic():
        repeats = _mark_known_duplicates(organization, pending, results)
        pending = [p for p in pending if results[p[0]] is None and p[0] not in repeats]
        customer_ids = _resolve_bulk_customers(organization, pending, results)
        pending = [p for p in pending if results[p[0]] is None]
        states = lock_customers(customer_ids.values())
        names: dict[int, str] = {}
        for index, item, _ in pending:
            if item.name and index in customer_ids:
                names.setdefault(customer_ids[index], item.name[:200])
        for customer_id in sorted(names):
            Customer.objects.filter(pk=customer_id, name="").update(name=names[customer_id])
        episodes = [
            _build_episode(
                organization=organization,
                customer_id=customer_ids[index],
                data=item,
                occurred_at=occurred_at,
                resolved=resolved[index],
                author_user=author_user,
                author_api_key=author_api_key,
            )
            for index, item, occurred_at in pending
        ]
        try:
            with transaction.atomic():
                Episode.objects.bulk_create(episodes)
        except IntegrityError:
            # A concurrent writer took one of our external ids: fall back to one by one.
            episodes = _insert_one_by_one(organization, pending, episodes, results)
        by_customer: dict[int, list[Episode]] = {}
        for (index, _, _), episode in zip(pending, episodes, strict=True):
            if episode is None:
                continue
            results[index] = BulkItemResult("created", episode=episode)
            by_customer.setdefault(episode.customer_id, []).append(episode)
        for index, first in repeats.items():
            first_result = results[first]
            results[index] = (
                BulkItemResult("duplicate", episode=first_result.episode)
                if first_result and first_result.episode
                else BulkItemResult(
                    "error",
                    error=InvalidInput(
                        "Repeats an earlier item's external_id.", field="external_id"
                    ),
                )
            )
        for customer_id in sorted(by_customer):
            _fold_into_narrative(
                customer_id, states[customer_id], by_customer[customer_id], now=now
            )
    return [r for r in results if r is not None]


def _mark_known_duplicates(organization, pending, results) -> dict[int, int]:
    """Mark items whose external id exists already; return {later index: first index} for
    repeats inside the batch, which are filled in once the first is written."""
    keyed = [(i, item) for i, item, _ in pending if item.external_id]
    repeats: dict[int, int] = {}
    if not keyed:
        return repeats
    match = Q()
    for _, item in keyed:
        match |= Q(source=item.source, external_id=item.external_id)
    existing = {
        (e.source, e.external_id): e
        for e in Episode.objects.for_org(organization).filter(match).select_related("location")
    }
    first_in_batch: dict[tuple[str, str], int] = {}
    for index, item in keyed:
        key = (item.source, item.external_id)
        if key in existing:
            results[index] = BulkItemResult("duplicate", episode=existing[key])
        elif key in first_in_batch:
            repeats[index] = first_in_batch[key]
        else:
            first_in_batch[key] = index
    return repeats


def _resolve_bulk_customers(organization, pending, results) -> dict[int, int]:
    """Map item index → customer id, creating customers for unknown identifiers.

    Names are not written here: that would lock customer rows out of primary-key order."""
    by_id = [(i, item) for i, item, _ in pending if item.customer_id is not None]
    by_identifiers = [(i, item) for i, item, _ in pending if item.customer_id is None]
    resolved: dict[int, int] = {}
    if by_id:
        known = set(
            Customer.objects.for_org(organization)
            .filter(pk__in={item.customer_id for _, item in by_id})
            .values_list("pk", flat=True)
        )
        for index, item in by_id:
            if item.customer_id in known:
                resolved[index] = item.customer_id
            else:
                results[index] = BulkItemResult(
                    "error", error=NotFoundError("No such customer.", field="customer.id")
                )
    wanted = []
    for index, item in by_identifiers:
        if not item.identifiers:
            results[index] = BulkItemResult(
                "error",
                error=InvalidInput(
                    "Give the customer's id or at least one identifier.",
                    field="customer",
                    code="required",
                ),
            )
            continue
        wanted.append((index, item.identifiers))
    for (index, _), customer_id in zip(
        wanted, identify_many(organization=organization, wanted=[w for _, w in wanted]), strict=True
    ):
        resolved[index] = customer_id
    return resolved


def _owners_of(organization: Organization, pairs: Iterable[tuple[str, str]]) -> dict:
    by_kind: dict[str, list[str]] = {}
    for kind, value in pairs:
        by_kind.setdefault(kind, []).append(value)
    if not by_kind:
        return {}
    match = Q()
    for kind, values in by_kind.items():
        match |= Q(kind=kind, value__in=values)
    rows = Identifier.objects.filter(Q(organization=organization) & match)
    return {
        (kind, value): owner
        for kind, value, owner in rows.values_list("kind", "value", "customer_id")
    }


def identify_many(*, organization: Organization, wanted: Sequence[dict[str, str]]) -> list[int]:
    """The customer id for each set of normalised identifiers, set-based.

    One query finds the known identifiers; entries that share an unknown identifier become one
    new customer; new identifiers are inserted in (kind, value) order with ON CONFLICT DO
    NOTHING, so two batches holding the same new identifiers in any order wait for each other
    instead of deadlocking; a concurrent writer that won an identifier is then respected.
    """
    pairs = sorted({pair for normalized in wanted for pair in normalized.items()})
    owners = _owners_of(organization, pairs)
    result: list[int | None] = []
    for normalized in wanted:
        known = {
            kind: owners[(kind, value)]
            for kind, value in normalized.items()
            if (kind, value) in owners
        }
        result.append(_preferred_owner(known))

    # Entries nobody knows, grouped by shared identifiers (union-find), one customer per group.
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def root(pair: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(pair, pair) != pair:
            pair = parent[pair]
        return pair

    unknown = [i for i, owner in enumerate(result) if owner is None]
    for i in unknown:
        first, *rest = sorted(wanted[i].items())
        for pair in rest:
            parent[root(pair)] = root(first)
    groups: dict[tuple[str, str], list[int]] = {}
    for i in unknown:
        groups.setdefault(root(min(wanted[i].items())), []).append(i)
    created = Customer.objects.bulk_create(Customer(organization=organization) for _ in groups)
    for members, customer in zip(groups.values(), created, strict=True):
        for i in members:
            result[i] = customer.pk

    claims: dict[tuple[str, str], int] = {}
    for i, normalized in enumerate(wanted):
        for pair in normalized.items():
            if pair not in owners:
                claims.setdefault(pair, result[i])
    if not claims:
        return result  # type: ignore[return-value]
    Identifier.objects.bulk_create(
        [
            Identifier(organization=organization, customer_id=owner, kind=kind, value=value)
            for (kind, value), owner in sorted(claims.items())
        ],
        ignore_conflicts=True,
    )
    actual = _owners_of(organization, claims)
    if all(actual[pair] == owner for pair, owner in claims.items()):
        return result  # type: ignore[return-value]
    # A concurrent writer took some identifiers first: point our entries at their owners and
    # drop the customers we created that ended up with no identifier at all.
    for i, normalized in enumerate(wanted):
        now_known = {pair: actual.get(pair, owners.get(pair)) for pair in normalized.items()}
        result[i] = _preferred_owner(
            {kind: owner for (kind, _), owner in now_known.items() if owner is not None}
        )
    orphans = {customer.pk for customer in created} - set(actual.values())
    if orphans:
        Customer.objects.filter(pk__in=orphans).delete()
    return result  # type: ignore[return-value]


def _insert_one_by_one(organization, pending, episodes, results) -> list[Episode | None]:
    inserted: list[Episode | None] = []
    for (index, item, _), episode in zip(pending, episodes, strict=True):
        episode.pk = None
        try:
            with transaction.atomic():
                episode.save(force_insert=True)
            inserted.append(episode)
        except IntegrityError:
            existing = (
                _existing_by_external_id(organization, item.source, item.external_id)
                if item.external_id
                else None
            )
            if existing is None:
                raise  # not a duplicate: let the batch fail whole rather than misreport
            results[index] = BulkItemResult("duplicate", episode=existing)
            inserted.append(None)
    return inserted


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
    with transaction.atomic():
        _lock_narrative(episode.customer_id)
        episode = Episode.objects.select_for_update().get(pk=episode.pk)
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
        episodes[customer_id].append(episode)
    drifted = []
    for customer_id, row in locked.items():
        mine = episodes[customer_id]  # newest first
        item_lists = [items for *_, items in mine if items][:USUAL_ORDER_WINDOW]
        fresh = fold_narrative(mine, item_lists)
        due = due_times(fresh, row.marks, row.policy)
        if fresh == row.state and due == (row.recovery_due_at, row.care_due_at):
            continue
        customer = Customer(pk=customer_id, recovery_due_at=due[0], care_due_at=due[1])
        for name, value in asdict(fresh).items():
            setattr(customer, name, value)
        drifted.append(customer)
    update_rows(
        Customer, drifted, [*NarrativeState.field_names(), "recovery_due_at", "care_due_at"]
    )
    return len(drifted)


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

"""Many episodes in one transaction; a bad item fails alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import (
    DomainError,
    InvalidInput,
    NotFoundError,
)
from accounts.models import ApiKey, Organization, User
from cxcore.models import (
    Customer,
    Episode,
)
from cxcore.outbound import emit_episodes_created
from cxcore.services.customers import identify_many, normalize_identifiers
from cxcore.services.episodes import (
    EpisodeInput,
    ResolvedExperience,
    _build_episode,
    _existing_by_external_id,
    _fold_into_narratives,
    check_episode_location,
    check_episode_text,
    lock_customers,
    resolve_experience,
    validate_occurred_at,
)
from cxcore.services.erased import CustomerErased, erased_among

# --- bulk ------------------------------------------------------------------------------------


@dataclass
class BulkItemResult:
    status: str  # created | duplicate | error
    episode: Episode | None = None
    error: DomainError | None = None


# (item index, item, occurred_at) for the items still to write; results by item index.
_Pending = list[tuple[int, EpisodeInput, datetime]]
_Results = list[BulkItemResult | None]


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
    results: _Results = [None] * len(items)
    pending: _Pending = []
    resolved: dict[int, ResolvedExperience] = {}
    for index, item in enumerate(items):
        if isinstance(item, DomainError):
            results[index] = BulkItemResult("error", error=item)
            continue
        try:
            occurred_at = item.occurred_at or now
            validate_occurred_at(occurred_at, now=now)
            check_episode_location(organization, item.location)
            check_episode_text(item)
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
        customer_ids = _resolve_bulk_customers(
            organization, pending, results, by_user=author_user, by_api_key=author_api_key
        )
        pending = [p for p in pending if results[p[0]] is None]
        states = lock_customers(customer_ids.values())
        # Under the locks, as erase_customer takes them: an erasure is either seen or waits.
        erased = erased_among(
            organization_id=organization.pk,
            customer_ids={customer_ids[i] for i, item, _ in pending if item.customer_id},
        )
        if erased:
            for index, _, _ in pending:
                if customer_ids.get(index) in erased:
                    results[index] = BulkItemResult(
                        "error", error=CustomerErased(customer_ids[index])
                    )
            pending = [p for p in pending if results[p[0]] is None]
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
        inserted: Sequence[Episode | None] = episodes
        try:
            with transaction.atomic():
                Episode.objects.bulk_create(episodes)
        except IntegrityError:
            # A concurrent writer took one of our external ids: fall back to one by one.
            inserted = _insert_one_by_one(organization, pending, episodes, results)
        by_customer: dict[int, list[Episode]] = {}
        for (index, _, _), episode in zip(pending, inserted, strict=True):
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
        # (A dict of read-only sequences: dict is invariant in its value type.)
        folds: dict[int, Sequence[Episode]] = dict(by_customer)
        _fold_into_narratives(states, folds, now=now)
        emit_episodes_created(
            organization_id=organization.pk,
            episodes=[r.episode for r in results if r and r.status == "created" and r.episode],
        )
    return [r for r in results if r is not None]


def _mark_known_duplicates(
    organization: Organization, pending: _Pending, results: _Results
) -> dict[int, int]:
    """Mark items whose external id exists already; return {later index: first index} for
    repeats inside the batch, which are filled in once the first is written."""
    keyed = [(i, item) for i, item, _ in pending if item.external_id]
    repeats: dict[int, int] = {}
    if not keyed:
        return repeats
    # One IN list on the (organization, source, external_id) index; the source is matched
    # here. (An OR of a thousand (source, external_id) pairs took longer to plan than to run.)
    wanted = {(item.source, item.external_id) for _, item in keyed}
    existing = {
        (e.source, e.external_id): e
        for e in Episode.objects.for_org(organization)
        .filter(
            source__in={source for source, _ in wanted},
            external_id__in={external_id for _, external_id in wanted},
        )
        .select_related("location")
        if (e.source, e.external_id) in wanted
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


def _resolve_bulk_customers(
    organization: Organization,
    pending: _Pending,
    results: _Results,
    *,
    by_user: User | None = None,
    by_api_key: ApiKey | None = None,
) -> dict[int, int]:
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
        wanted,
        identify_many(
            organization=organization,
            wanted=[w for _, w in wanted],
            by_user=by_user,
            by_api_key=by_api_key,
        ),
        strict=True,
    ):
        resolved[index] = customer_id
    return resolved


def _insert_one_by_one(
    organization: Organization, pending: _Pending, episodes: list[Episode], results: _Results
) -> list[Episode | None]:
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

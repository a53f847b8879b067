"""Customers: identification by any identifier, learning new ones, editing the card."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.errors import (
    InvalidInput,
    NotFoundError,
)
from accounts.models import ApiKey, Organization, User
from cxcore.models import (
    Customer,
    CustomerEdit,
    EditKind,
    Identifier,
    IdentifierKind,
)
from cxcore.rules import (
    normalize_identifier,
)
from cxcore.services.erased import refuse_erased
from cxcore.text_rules import check_free_text, check_name

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
    *,
    organization: Organization,
    normalized: dict[str, str],
    name: str = "",
    by_user: User | None = None,
    by_api_key: ApiKey | None = None,
) -> tuple[int, bool]:
    """Find the customer by any (normalised) identifier, learn the new ones, or create them.

    Returns (customer id, created). Runs inside the caller's transaction; the common case, a
    known customer with nothing new, costs one query. What is learnt about a known customer
    (an identifier, a first name) is kept in their history as by `by_user`/`by_api_key`.
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
    learnt: dict[str, dict[str, Any]] = {}
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
        # What this customer holds now: a concurrent learner may have taken one of them.
        taken = identifier_owners(organization=organization, normalized=unknown)
        learnt = {
            kind: {"old": None, "new": value}
            for kind, value in unknown.items()
            if taken.get(kind) == customer_id
        }
    if name and Customer.objects.filter(pk=customer_id, name="").update(name=name[:200]):
        learnt["name"] = {"old": "", "new": name[:200]}
    record_customer_edit(
        organization_id=organization.pk,
        customer_id=customer_id,
        changes=learnt,
        kind=EditKind.LEARNT,
        by_user=by_user,
        by_api_key=by_api_key,
    )
    return customer_id, False


# --- the card and its history ----------------------------------------------------------------

EDITABLE_FIELDS = ("name", "notes")


def record_customer_edit(
    *,
    organization_id: int,
    customer_id: int,
    changes: dict[str, dict[str, Any]],
    kind: str = EditKind.EDIT,
    by_user: User | None = None,
    by_api_key: ApiKey | None = None,
    now: datetime | None = None,
) -> CustomerEdit | None:
    """One history row for a change to the card: {field: {"old": …, "new": …}}; nothing when
    nothing changed. Called inside the change's own transaction, so the two stand or fall
    together."""
    if not changes:
        return None
    return CustomerEdit.objects.create(
        organization_id=organization_id,
        customer_id=customer_id,
        kind=kind,
        at=now or timezone.now(),
        by_user=by_user,
        by_api_key=by_api_key,
        fields=sorted(changes),
        changes=changes,
    )


@transaction.atomic
def update_customer(
    *,
    customer: Customer,
    by_user: User | None = None,
    by_api_key: ApiKey | None = None,
    now: datetime | None = None,
    **changes: Any,
) -> Customer:
    """Edit the card (name, notes) and keep the history: who, when, each field's old and new
    value. The row is locked and its values read under the lock, so two concurrent edits each
    record what they really replaced."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput("Not editable.", field=sorted(unknown)[0], code="read_only")
    if not changes:
        return customer
    if changes.get("name"):
        check_name(changes["name"], field="name")
    if changes.get("notes"):
        check_free_text(changes["notes"], field="notes")
    current = (
        Customer.objects.select_for_update(no_key=True)
        .filter(pk=customer.pk)
        .values(*changes)
        .first()
    )
    if current is None:
        raise NotFoundError("No such customer.", field="customer.id")
    refuse_erased(organization_id=customer.organization_id, customer_ids=[customer.pk])
    for name, value in changes.items():
        setattr(customer, name, value)
    customer.save(update_fields=[*changes, "updated_at"])
    record_customer_edit(
        organization_id=customer.organization_id,
        customer_id=customer.pk,
        changes={
            name: {"old": current[name], "new": value}
            for name, value in changes.items()
            if current[name] != value
        },
        by_user=by_user,
        by_api_key=by_api_key,
        now=now,
    )
    return customer


def _owners_of(
    organization: Organization, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
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


def _record_learnt(
    organization: Organization,
    taken: dict[tuple[str, str], int],
    *,
    new_customers: set[int],
    by_user: User | None,
    by_api_key: ApiKey | None,
) -> None:
    """The identifiers a batch taught known customers, as one history row each, in one
    INSERT (nothing when the batch only met known identifiers or new people)."""
    learnt: dict[int, dict[str, list[str]]] = {}
    for (kind, value), owner in sorted(taken.items()):
        if owner not in new_customers:
            learnt.setdefault(owner, {}).setdefault(kind, []).append(value)
    if not learnt:
        return
    now = timezone.now()
    CustomerEdit.objects.bulk_create(
        CustomerEdit(
            organization=organization,
            customer_id=owner,
            kind=EditKind.LEARNT,
            at=now,
            by_user=by_user,
            by_api_key=by_api_key,
            fields=sorted(kinds),
            changes={
                kind: {"old": None, "new": values[0] if len(values) == 1 else values}
                for kind, values in kinds.items()
            },
        )
        for owner, kinds in sorted(learnt.items())
    )


def identify_many(
    *,
    organization: Organization,
    wanted: Sequence[dict[str, str]],
    by_user: User | None = None,
    by_api_key: ApiKey | None = None,
) -> list[int]:
    """The customer id for each set of normalised identifiers, set-based.

    One query finds the known identifiers; entries that share an unknown identifier become one
    new customer; new identifiers are inserted in (kind, value) order with ON CONFLICT DO
    NOTHING, so two batches holding the same new identifiers in any order wait for each other
    instead of deadlocking; a concurrent writer that won an identifier is then respected.
    """
    pairs = sorted({pair for normalized in wanted for pair in normalized.items()})
    owners = _owners_of(organization, pairs)
    known: list[int | None] = []
    for normalized in wanted:
        owned = {
            kind: owners[(kind, value)]
            for kind, value in normalized.items()
            if (kind, value) in owners
        }
        known.append(_preferred_owner(owned))

    # Entries nobody knows, grouped by shared identifiers (union-find), one customer per group.
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def root(pair: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(pair, pair) != pair:
            pair = parent[pair]
        return pair

    unknown = [i for i, owner in enumerate(known) if owner is None]
    for i in unknown:
        first, *rest = sorted(wanted[i].items())
        for pair in rest:
            parent[root(pair)] = root(first)
    groups: dict[tuple[str, str], list[int]] = {}
    for i in unknown:
        groups.setdefault(root(min(wanted[i].items())), []).append(i)
    created = Customer.objects.bulk_create(Customer(organization=organization) for _ in groups)
    new_owners = {
        i: customer.pk
        for members, customer in zip(groups.values(), created, strict=True)
        for i in members
    }
    result = [new_owners[i] if owner is None else owner for i, owner in enumerate(known)]

    claims: dict[tuple[str, str], int] = {}
    for i, normalized in enumerate(wanted):
        for pair in normalized.items():
            if pair not in owners:
                claims.setdefault(pair, result[i])
    if not claims:
        return result
    Identifier.objects.bulk_create(
        [
            Identifier(organization=organization, customer_id=owner, kind=kind, value=value)
            for (kind, value), owner in sorted(claims.items())
        ],
        ignore_conflicts=True,
    )
    actual = _owners_of(organization, claims)
    _record_learnt(
        organization,
        {pair: owner for pair, owner in claims.items() if actual.get(pair) == owner},
        new_customers={customer.pk for customer in created},
        by_user=by_user,
        by_api_key=by_api_key,
    )
    if all(actual[pair] == owner for pair, owner in claims.items()):
        return result
    # A concurrent writer took some identifiers first: point our entries at their owners and
    # drop the customers we created that ended up with no identifier at all.
    for i, normalized in enumerate(wanted):
        now_known = {pair: actual.get(pair, owners.get(pair)) for pair in normalized.items()}
        preferred = _preferred_owner(
            {kind: owner for (kind, _), owner in now_known.items() if owner is not None}
        )
        # Every identifier has an owner now (ours or the concurrent writer's).
        if preferred is not None:
            result[i] = preferred
    orphans = {customer.pk for customer in created} - set(actual.values())
    if orphans:
        Customer.objects.filter(pk__in=orphans).delete()
    return result

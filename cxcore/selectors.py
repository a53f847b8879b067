"""Reads that span relations or shape a response; each decides its own query budget."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet

from accounts.models import Organization
from cxcore.keyset import Position, keyset_page
from cxcore.models import Customer, Episode, Identifier
from cxcore.rules import identifiers_in_search
from cxcore.services import find_customer_id, normalize_identifiers
from cxcore.vocabulary import IdentifierKind

SEARCH_LIMIT = 50


def with_identifiers(customers: QuerySet[Customer]) -> QuerySet[Customer]:
    """Customers with their identifiers in one more query, in the order a card shows them."""
    return customers.prefetch_related(
        Prefetch("identifiers", queryset=Identifier.objects.order_by("kind", "value"))
    )


def customers_with_identifiers(organization: Organization) -> QuerySet[Customer]:
    return with_identifiers(Customer.objects.for_org(organization))


def customer_id_for(*, organization: Organization, identifiers: dict[str, str]) -> int | None:
    """The customer raw identifiers point at, if any (a bad one is a 400 naming its field)."""
    normalized = normalize_identifiers(
        organization=organization, identifiers=identifiers, field_prefix=""
    )
    return find_customer_id(organization=organization, normalized=normalized)


def search_box(*, organization: Organization, text: str) -> QuerySet[Customer]:
    """What a search box finds, within the organization, the most recently seen first, at most
    SEARCH_LIMIT: a whole phone number or an email exactly; else a card exactly, the phone
    numbers ending in the 4 or more digits typed, and the names holding every word typed, in
    any order ("Reyes Daniel" finds Daniel Reyes).

    A phone ending is a `LIKE '%0555'` over the organization's phone identifiers: it walks the
    (organization, kind) part of the identifier_unique_per_org index, never another
    organization's rows, and is cut at SEARCH_LIMIT customers. A reversed-value index would
    make it a range scan; a chain with millions of numbers may want one (a migration)."""
    terms = identifiers_in_search(text, country=organization.country)
    exact = {k: v for k, v in terms.identifiers.items() if k != IdentifierKind.CARD}
    if exact:  # an email or a whole phone number: one person, or nobody
        return search_customers(organization=organization, identifiers=exact)
    ids: set[int] = set()
    if IdentifierKind.CARD in terms.identifiers:
        card_holder = customer_id_for(
            organization=organization,
            identifiers={IdentifierKind.CARD: terms.identifiers[IdentifierKind.CARD]},
        )
        ids.update([card_holder] if card_holder else [])
    if terms.phone_ending:
        ids.update(
            Identifier.objects.for_org(organization)
            .filter(kind=IdentifierKind.PHONE, value__endswith=terms.phone_ending)
            .values_list("customer_id", flat=True)[:SEARCH_LIMIT]
        )
    match = Q(pk__in=ids) if ids else Q()
    if terms.name_words:
        name = Q()
        for word in terms.name_words:
            name &= Q(name__icontains=word)
        match = match | name if ids else name
    if not match:
        return Customer.objects.none()
    # Ids first, then the customers: a subquery here would have PostgreSQL walk every
    # customer of the organization in recency order to test each against it.
    return (
        customers_with_identifiers(organization)
        .filter(match)
        .order_by("-last_visit_at", "-id")[:SEARCH_LIMIT]
    )


def search_customers(
    *, organization: Organization, identifiers: dict[str, str], q: str = ""
) -> QuerySet[Customer]:
    """Customers matching an identifier exactly (normalised) and/or a name fragment: the most
    recently seen first, at most SEARCH_LIMIT."""
    qs = customers_with_identifiers(organization)
    if identifiers:
        customer_id = customer_id_for(organization=organization, identifiers=identifiers)
        qs = qs.filter(pk=customer_id) if customer_id else qs.none()
    if q:
        qs = qs.filter(name__icontains=q.strip())
    return qs.order_by("-last_visit_at", "-id")[:SEARCH_LIMIT]


def customer_timeline_episode(*, episode_id: int) -> Episode:
    """One episode with what the timeline shows of it."""
    return Episode.objects.select_related(
        "customer", "location", "author_user", "author_api_key"
    ).get(pk=episode_id)


# Newest first; the episode_customer_timeline index serves it.
TIMELINE_ORDER = ("-occurred_at", "-id")
TIMELINE_POSITION = (datetime, int)  # the types of TIMELINE_ORDER's keys, to read cursors


def customer_timeline(
    *, customer: Customer, before: Position | None, limit: int
) -> tuple[list[Episode], Position | None]:
    """A page of the narrative newest first, and where the next one starts (None at the end):
    keyset-paged, so a deep page costs what the first one does."""
    qs = Episode.objects.filter(customer=customer).select_related(
        "location", "author_user", "author_api_key"
    )
    return keyset_page(qs, order=TIMELINE_ORDER, after=before, limit=limit)

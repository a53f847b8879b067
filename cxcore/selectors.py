"""Reads that span relations or shape a response; each decides its own query budget."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch, QuerySet

from accounts.models import Organization
from cxcore.keyset import Position, keyset_page
from cxcore.models import Customer, Episode, Identifier
from cxcore.rules import identifiers_in_search
from cxcore.services import find_customer_id, normalize_identifiers

SEARCH_LIMIT = 50


def customers_with_identifiers(organization: Organization) -> QuerySet[Customer]:
    return Customer.objects.for_org(organization).prefetch_related(
        Prefetch("identifiers", queryset=Identifier.objects.order_by("kind", "value"))
    )


def customer_id_for(*, organization: Organization, identifiers: dict[str, str]) -> int | None:
    """The customer raw identifiers point at, if any (a bad one is a 400 naming its field)."""
    normalized = normalize_identifiers(
        organization=organization, identifiers=identifiers, field_prefix=""
    )
    return find_customer_id(organization=organization, normalized=normalized)


def search_box(*, organization: Organization, text: str) -> QuerySet[Customer]:
    """What a search box finds: an identifier exactly (phone in any format, email, card),
    else a name fragment."""
    identifiers = identifiers_in_search(text, country=organization.country)
    return search_customers(
        organization=organization, identifiers=identifiers, q="" if identifiers else text
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

"""Server-rendered pages of the narrative: customer search and the customer page."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import View

from accounts.tenancy import TenantPageMixin
from cxcore.api.pagination import decode_cursor, encode_cursor
from cxcore.errors import DomainError
from cxcore.models import IdentifierKind
from cxcore.rules import normalize_identifier
from cxcore.selectors import customer_timeline, customers_with_identifiers, search_customers

PAGE_SIZE = 50


class CustomerSearchView(TenantPageMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        q = request.GET.get("q", "").strip()[:100].replace("\x00", "")
        error = ""
        customers: list[Any] = []
        org = self.tenant.organization
        if q:
            identifiers = _identifiers_in(q, country=org.country)
            try:
                customers = list(
                    search_customers(organization=org, identifiers=identifiers)[:50]
                    if identifiers
                    else search_customers(organization=org, identifiers={}, q=q)[:50]
                )
            except DomainError as exc:
                error = exc.message
        else:
            customers = list(
                customers_with_identifiers(org)
                .filter(last_visit_at__isnull=False)
                .order_by("-last_visit_at", "-id")[:25]
            )
        template = (
            "cxcore/_customer_results.html"
            if request.headers.get("HX-Request")
            else ("cxcore/customer_search.html")
        )
        return render(request, template, {"q": q, "customers": customers, "error": error})


def _identifiers_in(text: str, *, country: str) -> dict[str, str]:
    """Read a search box: an email, a phone number, else a card or name."""
    if "@" in text:
        return {IdentifierKind.EMAIL: text}
    digits = sum(ch.isdigit() for ch in text)
    if digits >= 6 and digits >= len(text.replace(" ", "")) - 3:
        try:
            normalize_identifier(IdentifierKind.PHONE, text, country=country)
            return {IdentifierKind.PHONE: text}
        except DomainError:
            return {IdentifierKind.CARD: text}
    return {}


class CustomerPageView(TenantPageMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        customer = customers_with_identifiers(self.tenant.organization).filter(pk=pk).first()
        if customer is None:
            raise Http404("No such customer.")
        before = None
        cursor = request.GET.get("before")
        if cursor:
            try:
                before = decode_cursor(cursor)
            except DomainError as exc:
                raise Http404("No such page.") from exc
        episodes = customer_timeline(customer=customer, limit=PAGE_SIZE + 1, before=before)
        older = None
        if len(episodes) > PAGE_SIZE:
            episodes = episodes[:PAGE_SIZE]
            older = encode_cursor(episodes[-1].occurred_at, episodes[-1].pk)
        default_tz = self.tenant.organization.time_zone
        return render(
            request,
            "cxcore/customer_page.html",
            {
                "customer": customer,
                "episodes": episodes,
                "older": older,
                "default_tz": default_tz,
            },
        )

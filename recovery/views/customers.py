"""Merge a duplicate customer from the customer page: find them, compare both side by side,
confirm. The web twin of POST /api/v1/customers/{id}/merge/, through the same service."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from accounts.errors import DomainError
from cxcore.audit import record_read
from cxcore.models import Customer, ReadAction
from cxcore.selectors import customers_with_identifiers, search_box
from recovery.services import check_merge_allowed, merge_customers
from recovery.views.managers import ManagersPageMixin


class CustomerMergeView(ManagersPageMixin, View):
    """/customers/<pk>/merge/: `pk` is the customer kept; `?q=` searches for the duplicate,
    `?duplicate=<id>` shows both side by side, and POSTing `duplicate` merges it in."""

    def customer_or_404(self, pk: int | str | None, *, name: str = "customer") -> Customer:
        customer = None
        if isinstance(pk, int) or (pk and pk.isascii() and pk.isdigit() and len(pk) < 19):
            org = self.tenant.organization
            customer = customers_with_identifiers(org).filter(pk=int(pk)).first()
        if customer is None:
            raise Http404(f"No such {name}.")
        return customer

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        keep = self.customer_or_404(pk)
        duplicate = None
        if request.GET.get("duplicate"):
            duplicate = self.customer_or_404(request.GET["duplicate"], name="duplicate")
        return self.page(keep, duplicate)

    def page(
        self, keep: Customer, duplicate: Customer | None, *, error: str = "", status: int = 200
    ) -> HttpResponse:
        q = self.request.GET.get("q", "").strip()[:100].replace("\x00", "")
        found: list[Customer] = []
        search_error = ""
        if q and duplicate is None:
            try:
                found = [
                    c
                    for c in search_box(organization=self.tenant.organization, text=q)
                    if c.pk != keep.pk
                ]
            except DomainError as exc:
                search_error = exc.message
        # One row for the page: the customer kept and whoever is shown beside it.
        record_read(
            tenant=self.tenant,
            action=ReadAction.PAGE,
            customer_ids=[keep.pk, *([duplicate.pk] if duplicate else [c.pk for c in found])],
            request=self.request,
        )
        context: dict[str, Any] = {
            "keep": keep,
            "duplicate": duplicate,
            "q": q,
            "found": found,
            "search_error": search_error,
            "error": error,
            "same": duplicate is not None and duplicate.pk == keep.pk,
            "default_tz": self.tenant.organization.time_zone,
        }
        return render(self.request, "cxcore/customer_merge.html", context, status=status)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        keep = self.customer_or_404(pk)
        duplicate = self.customer_or_404(request.POST.get("duplicate"), name="duplicate")
        if request.POST.get("confirm") != "yes":
            return self.page(
                keep, duplicate, error="Confirm the merge with its button.", status=400
            )
        try:
            check_merge_allowed(tenant=self.tenant, into=keep, duplicate=duplicate)
            merge_customers(into=keep, duplicate=duplicate, actor=self.actor())
        except DomainError as exc:
            return self.page(keep, duplicate, error=exc.message, status=exc.status_code)
        messages.success(request, f"Merged {duplicate.display_name} into {keep.display_name}.")
        return redirect("customer-page", keep.pk)

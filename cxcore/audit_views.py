"""The owners' page of the read audit: who read a customer's data (or anyone's), newest first,
keyset-paged like the timeline. Owners only: the audit spans every location."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import View

from accounts.errors import DomainError
from accounts.models import Role
from accounts.tenancy import TenantPageMixin
from cxcore.audit import AUDIT_POSITION, actor_names, read_audit_page
from cxcore.keyset import decode_cursor, encode_cursor
from cxcore.models import Customer, ReadAudit

PAGE_SIZE = 50


class ReadAuditPageView(TenantPageMixin, View):
    """/audit/ for the whole organization, /customers/<pk>/audit/ for one customer."""

    required_roles = (Role.OWNER,)
    queryset = ReadAudit.objects.all()

    def get(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        customer = None
        if pk is not None:
            customer = Customer.objects.for_tenant(self.tenant).filter(pk=pk).first()
            if customer is None:
                raise Http404("No such customer.")
        after = None
        cursor = request.GET.get("before")
        if cursor:
            try:
                after = decode_cursor(cursor, shape=AUDIT_POSITION)
            except DomainError as exc:
                raise Http404("No such page.") from exc
        rows, following = read_audit_page(
            self.get_queryset(),
            customer_id=customer.pk if customer else None,
            after=after,
            limit=PAGE_SIZE,
        )
        names = actor_names(rows)
        context = {
            "customer": customer,
            "rows": [(row, names[(row.actor_kind, row.actor_id)]) for row in rows],
            "older": encode_cursor(*following) if following else None,
        }
        return render(request, "cxcore/read_audit.html", context)

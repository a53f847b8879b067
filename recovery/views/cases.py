"""The case page: a case with its triggers, suggested actions and history, and its actions."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils import timezone
from django.views import View

from accounts.errors import DomainError
from cxcore.models import Episode
from recovery.selectors import case_page, cases_for
from recovery.services import acknowledge_case, assign_case, dismiss_case, resolve_case
from recovery.views.managers import ManagersPageMixin

# The forms' fields a domain error can name: the error is shown on the field, not above.
FIELD_ERRORS = ("reason", "note")


class CasePageView(ManagersPageMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self.page(pk)

    def page(
        self, pk: int, status: int = 200, errors: dict[str, str] | None = None
    ) -> HttpResponse:
        now = timezone.now()
        found = case_page(cases_for(self.tenant), pk, now=now)
        if found is None:
            raise Http404("No such case.")
        case = found.case
        trigger = next(iter(case.triggers.all()), None)
        around = trigger.occurred_at if trigger else case.opened_at
        narrative = list(
            Episode.objects.for_tenant(self.tenant)
            .filter(customer_id=case.customer_id)
            .filter(occurred_at__gte=around - timedelta(days=30))
            .select_related("location")
            .order_by("-occurred_at", "-id")[:40]
        )
        context = {
            "page": found,
            "case": case,
            "trigger_ids": {t.pk for t in case.triggers.all()},
            "narrative": narrative,
            "now": now,
            "errors": errors or {},
            "values": self.request.POST if errors else {},
            "default_tz": self.tenant.organization.time_zone,
        }
        htmx = bool(self.request.headers.get("HX-Request"))
        context["htmx"] = htmx  # a swapped-in body shows the messages the page's top would
        template = "recovery/_case_body.html" if htmx else "recovery/case.html"
        return render(self.request, template, context, status=status)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        case = cases_for(self.tenant).filter(pk=pk).select_related("organization").first()
        if case is None:
            raise Http404("No such case.")
        action = request.POST.get("action")
        try:
            if action == "resolve":
                taken = [int(a) for a in request.POST.getlist("actions") if a.isdigit()][:20]
                resolve_case(case=case, note=request.POST.get("note", "")[:2000],
                             action_ids=taken, actor=self.actor())  # fmt: skip
            elif action == "dismiss":
                dismiss_case(case=case, reason=request.POST.get("reason", ""), actor=self.actor())
            elif action == "acknowledge":
                acknowledge_case(case=case, actor=self.actor())
            elif action == "assign-me":
                assign_case(case=case, assignee=self.tenant.user, actor=self.actor())
            else:
                return HttpResponseBadRequest("Unknown action.")
        except DomainError as exc:
            status = 400 if exc.status_code == 400 else 409
            if exc.field in FIELD_ERRORS:
                return self.page(pk, status=status, errors={exc.field: exc.message})
            messages.error(request, exc.message)
            return self.page(pk, status=status)
        return self.page(pk)

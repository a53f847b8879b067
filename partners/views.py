"""The partner pages: the list, a partner's page with its incidents, the add and edit form
(owners), the partner's answer on an incident, and the monthly scorecard (page and CSV)."""

from __future__ import annotations

import csv
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View

from accounts.errors import DomainError
from accounts.models import Role
from accounts.tenancy import TenantPageMixin
from cxcore.keyset import decode_cursor, encode_cursor
from cxcore.spreadsheets import spreadsheet_safe
from partners.forms import IncidentActionForm, MonthForm, PartnerForm
from partners.models import Partner, PartnerIncident
from partners.selectors import (
    INCIDENT_POSITION,
    incident_page,
    incidents_for,
    partner_list,
    partners_for,
    scorecard,
)
from partners.services import (
    answer_incident,
    create_partner,
    dispute_incident,
    fix_incident,
    update_partner,
)
from partners.vocabulary import IncidentStatus
from recovery.views.managers import ManagersPageMixin

INCIDENT_PAGE = 25


class PartnerListView(ManagersPageMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "partners/list.html", {"partners": partner_list(self.tenant)})


class PartnerEditView(TenantPageMixin, View):
    """Add a partner, or change one: the organization's wiring, so owners only."""

    required_roles = (Role.OWNER,)

    def _partner(self, pk: int | None) -> Partner | None:
        if pk is None:
            return None
        partner = partners_for(self.tenant).filter(pk=pk).first()
        if partner is None:
            raise Http404("No such partner.")
        return partner

    def get(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        partner = self._partner(pk)
        form = PartnerForm.for_partner(partner) if partner else PartnerForm()
        return render(request, "partners/form.html", {"form": form, "partner": partner})

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        partner = self._partner(pk)
        form = PartnerForm(request.POST)
        if form.is_valid():
            try:
                if partner is None:
                    partner = create_partner(
                        organization=self.tenant.organization, fields=form.fields_for_service()
                    )
                else:
                    partner = update_partner(partner=partner, fields=form.fields_for_service())
            except DomainError as exc:
                form.add_domain_error(exc)
            else:
                messages.success(request, f"{partner.name} saved.")
                return redirect("partner-page", partner.pk)
        context = {"form": form, "partner": partner}
        return render(request, "partners/form.html", context, status=400)


class PartnerPageView(ManagersPageMixin, View):
    """A partner, its contact and its incidents (newest first, by status), paged by keyset."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self.page(pk)

    def page(self, pk: int, *, status: int = 200, error: dict | None = None) -> HttpResponse:
        partner = partners_for(self.tenant).filter(pk=pk).first()
        if partner is None:
            raise Http404("No such partner.")
        wanted = self.request.GET.get("status", "")
        incidents = incidents_for(self.tenant).filter(partner=partner)
        if wanted in IncidentStatus.values:
            incidents = incidents.filter(status=wanted)
        after = None
        cursor = self.request.GET.get("after")
        if cursor:
            try:
                after = decode_cursor(cursor, shape=INCIDENT_POSITION)
            except DomainError as exc:
                raise Http404("No such page.") from exc
        rows, following = incident_page(incidents, after=after, limit=INCIDENT_PAGE)
        context = {
            "partner": partner,
            "incidents": rows,
            "more": encode_cursor(*following) if following else None,
            "wanted": wanted,
            "statuses": IncidentStatus.choices,
            "error": error or {},
            "default_tz": self.tenant.organization.time_zone,
        }
        return render(self.request, "partners/partner.html", context, status=status)


class IncidentActionView(PartnerPageView):
    """The partner's answer, a fix or a dispute, recorded by an owner or manager."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        incident = incidents_for(self.tenant).filter(pk=pk).select_related("partner").first()
        if incident is None:
            raise Http404("No such incident.")
        form = IncidentActionForm(request.POST)
        if not form.is_valid():
            problem = {"incident": incident.pk, "field": "action", "message": "Choose an action."}
            return self.page(incident.partner_id, status=400, error=problem)
        action, text = form.cleaned_data["action"], form.cleaned_data["answer"]
        try:
            self.act(incident, action, text)
        except DomainError as exc:
            problem = {"incident": incident.pk, "field": exc.field, "message": exc.message}
            return self.page(incident.partner_id, status=exc.status_code, error=problem)
        messages.success(request, f"Incident #{incident.pk}: {self.DONE[action]}.")
        return redirect(f"{reverse('partner-page', args=[incident.partner_id])}#incident-{pk}")

    DONE = {"answer": "answer recorded", "fixed": "marked fixed", "disputed": "marked disputed"}

    def act(self, incident: PartnerIncident, action: str, text: str) -> None:
        by = self.tenant.user
        if action == "answer":
            answer_incident(incident=incident, answer=text, by=by)
        elif action == "fixed":
            fix_incident(incident=incident, by=by, note=text)
        else:
            dispute_incident(incident=incident, by=by, note=text)


class ScorecardView(ManagersPageMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        form = MonthForm(request.GET)
        card = scorecard(tenant=self.tenant, month=form.chosen_month(), now=timezone.now())
        context = {"card": card, "form": form}
        return render(
            request, "partners/scorecard.html", context, status=200 if form.is_valid() else 400
        )


SCORECARD_COLUMNS = [
    "partner", "touchpoints", "month", "involved_visits", "failures", "failures_per_100_visits",
    "answered", "median_hours_to_answer", "affected_customers", "returned", "return_measured",
    "return_rate", "still_in_window", "active",
]  # fmt: skip


class _Echo:
    def write(self, value: str) -> str:
        return value


class ScorecardCsvView(ManagersPageMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        form = MonthForm(request.GET)
        if not form.is_valid():  # a file for another month than the one asked would mislead
            problems = [
                f"{name}: {' '.join(map(str, errors))}" for name, errors in form.errors.items()
            ]
            return HttpResponse("\n".join(problems), status=400, content_type="text/plain")
        card = scorecard(tenant=self.tenant, month=form.chosen_month(), now=timezone.now())
        writer = csv.writer(_Echo())
        lines = [writer.writerow(SCORECARD_COLUMNS)]
        for row in card.rows:
            lines.append(writer.writerow(scorecard_cells(row, f"{card.month:%Y-%m}")))
        response = HttpResponse("".join(lines), content_type="text/csv")
        filename = f"partner-scorecard-{card.month:%Y-%m}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


def scorecard_cells(row: Any, month: str) -> list[Any]:
    """One partner's line of the CSV; text that a spreadsheet would run is made safe."""

    def blank(value: Any) -> Any:
        return "" if value is None else value

    return [
        spreadsheet_safe(row.partner.name),
        " ".join(row.partner.touchpoints),
        month,
        row.involved_visits,
        row.failures,
        blank(row.failures_per_100),
        row.answered,
        blank(row.median_hours_to_answer),
        row.affected_customers,
        row.returned.numerator,
        row.returned.denominator,
        blank(row.returned.value),
        row.still_in_window,
        "yes" if row.partner.is_active else "no",
    ]

"""The insights page: negative experiences, SLAs, the recovery rate and what recovery brings."""

from __future__ import annotations

from datetime import timedelta

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views import View

from accounts.errors import DomainError
from recovery.forms import InsightsForm
from recovery.insights import summary as insights_summary
from recovery.views.managers import ManagersPageMixin


class InsightsView(ManagersPageMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        form = InsightsForm(request.GET)
        form.is_valid()
        end = form.cleaned_data.get("end") or timezone.localdate()
        start = form.cleaned_data.get("start") or end - timedelta(days=29)
        start = min(start, end)
        slug = form.cleaned_data.get("location")
        try:
            location = self.tenant.resolve_location(slug) if slug else None
        except DomainError as exc:
            raise Http404("No such location.") from exc
        result = insights_summary(tenant=self.tenant, start=start, end=end, location=location)
        places = sorted({place for row in result.heat.values() for place in row})
        heat = [
            (code, [(result.heat[code].get(place, 0)) for place in places])
            for code in sorted(result.heat)
        ]
        top = max((v for _, values in heat for v in values), default=1) or 1
        context = {
            "s": result,
            "form": form,
            "locations": self.tenant.locations(),
            "places": places,
            "heat": [(code, [(v, round(v / top, 2)) for v in values]) for code, values in heat],
        }
        return render(request, "recovery/insights.html", context)

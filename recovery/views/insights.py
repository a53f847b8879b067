"""The insights page: negative experiences, SLAs, the recovery rate and what recovery brings,
and the evidence from the randomised draws: does care work, and what works."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views import View

from accounts.errors import DomainError
from cxcore.db_router import replica_reads
from cxcore.vocabulary import touchpoint_label
from partners.selectors import last_full_month
from partners.selectors import scorecard as partner_scorecard
from recovery.evidence import evidence
from recovery.forms import InsightsForm
from recovery.insights import summary as insights_summary
from recovery.views.managers import ManagersPageMixin


class InsightsView(ManagersPageMixin, View):
    @replica_reads()
    def get(self, request: HttpRequest) -> HttpResponse:
        # The API's parameters (`from`, `to`, `location`); a bad period is said on its field
        # and the page shows the last 30 days meanwhile.
        form = InsightsForm(request.GET)
        start, end = form.period()
        slug = form.cleaned_data.get("location") if form.is_valid() else None
        try:
            location = self.tenant.resolve_location(slug) if slug else None
        except DomainError as exc:
            raise Http404("No such location.") from exc
        result = insights_summary(tenant=self.tenant, start=start, end=end, location=location)
        places = sorted({place for row in result.heat.values() for place in row})
        heat = [
            (touchpoint_label(code), [result.heat[code].get(place, 0) for place in places])
            for code in sorted(result.heat, key=touchpoint_label)
        ]
        top = max((v for _, values in heat for v in values), default=1) or 1
        context = {
            "s": result,
            "form": form,
            "start": start,
            "end": end,
            "locations": self.tenant.locations(),
            "places": places,
            "heat": [(label, [(v, v / top) for v in values]) for label, values in heat],
            "by_touchpoint": [(touchpoint_label(c), n) for c, n in result.by_touchpoint],
            "third_party": [(touchpoint_label(c), n) for c, n in result.third_party],
            # All time, not the period: the evidence builds up case by case.
            "evidence": evidence(tenant=self.tenant, now=timezone.now(), location=location),
            # The partners' last full month, as on their scorecard page.
            "partner_card": partner_scorecard(
                tenant=self.tenant, month=last_full_month(timezone.localdate()), now=timezone.now()
            ),
        }
        return render(
            request, "recovery/insights.html", context, status=200 if form.is_valid() else 400
        )

"""Server-rendered pages of the narrative: customer search and the customer page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views import View

from accounts.errors import DomainError
from accounts.tenancy import TenantPageMixin
from cxcore.keyset import decode_cursor, encode_cursor
from cxcore.models import EXPERIENCE_LABELS, Episode
from cxcore.selectors import (
    TIMELINE_POSITION,
    customer_timeline,
    customer_timeline_episode,
    customers_with_identifiers,
    search_box,
)
from cxcore.services import correct_experience

PAGE_SIZE = 50


class CustomerSearchView(TenantPageMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        q = request.GET.get("q", "").strip()[:100].replace("\x00", "")
        error = ""
        customers: list[Any] = []
        org = self.tenant.organization
        if q:
            try:
                customers = list(search_box(organization=org, text=q))
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


class CustomerPageView(TenantPageMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        customer = customers_with_identifiers(self.tenant.organization).filter(pk=pk).first()
        if customer is None:
            raise Http404("No such customer.")
        before = None
        cursor = request.GET.get("before")
        if cursor:
            try:
                before = decode_cursor(cursor, shape=TIMELINE_POSITION)
            except DomainError as exc:
                raise Http404("No such page.") from exc
        episodes, following = customer_timeline(customer=customer, before=before, limit=PAGE_SIZE)
        older = encode_cursor(*following) if following else None
        return render(
            request,
            "cxcore/customer_page.html",
            {
                "customer": customer,
                "episodes": episodes,
                "older": older,
                "default_tz": self.tenant.organization.time_zone,
                "experience_choices": EXPERIENCE_CHOICES,
            },
        )


EXPERIENCE_CHOICES = [(value, f"{value:+d} {label}") for value, label in EXPERIENCE_LABELS.items()]


class ExperienceForm(forms.Form):
    experience = forms.TypedChoiceField(
        choices=[("", "none"), *EXPERIENCE_CHOICES], coerce=int, empty_value=None, required=False
    )
    reason = forms.CharField(max_length=500, required=False)


class EpisodeExperienceView(TenantPageMixin, View):
    """Staff correct an episode's experience from the customer page (HTMX or plain POST)."""

    def post(self, request: HttpRequest, customer_pk: int, pk: int) -> HttpResponse:
        episode = (
            Episode.objects.for_tenant(self.tenant).filter(customer_id=customer_pk, pk=pk).first()
        )
        if episode is None:
            raise Http404("No such episode.")
        form = ExperienceForm(request.POST)
        if not form.is_valid():
            return HttpResponseBadRequest("Choose an experience from -2 to +2, or none.")
        correct_experience(
            episode=episode,
            experience=form.cleaned_data["experience"],
            reason=form.cleaned_data["reason"],
            by_user=request.user,
        )
        if not request.headers.get("HX-Request"):
            return redirect("customer-page", customer_pk)
        episode = customer_timeline_episode(episode_id=episode.pk)
        context = {
            "e": episode,
            "customer": episode.customer,  # the card's last experience is swapped out of band
            "default_tz": self.tenant.organization.time_zone,
            "experience_choices": EXPERIENCE_CHOICES,
        }
        return render(request, "cxcore/_episode_corrected.html", context)

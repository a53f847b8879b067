"""Server-rendered pages of the narrative: customer search and the customer page (its notes,
a call or outreach logged, an experience corrected)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from accounts.errors import DomainError
from accounts.tenancy import TenantPageMixin
from cxcore.audit import record_read
from cxcore.forms import (
    EXPERIENCE_CHOICES,
    ExperienceForm,
    NotesForm,
    OutreachForm,
    episode_options,
)
from cxcore.keyset import decode_cursor, encode_cursor
from cxcore.models import Customer, Episode, ReadAction, Source
from cxcore.selectors import (
    TIMELINE_POSITION,
    customer_timeline,
    customer_timeline_episode,
    customers_with_identifiers,
    search_box,
)
from cxcore.services import EpisodeInput, correct_experience, record_episode, update_customer
from cxcore.vocabulary import EpisodeKind

__all__ = ["EXPERIENCE_CHOICES"]  # the till's log form offers the same scale

PAGE_SIZE = 50
CASES_SHOWN = 20
EDITS_SHOWN = 5


class CustomerSearchView(TenantPageMixin, View):
    def post(self, request: HttpRequest) -> HttpResponse:
        """The same search, with `q` in the body: a phone or an email kept out of the URL."""
        return self.get(request)

    def get(self, request: HttpRequest) -> HttpResponse:
        typed = request.POST if request.method == "POST" else request.GET
        q = typed.get("q", "").strip()[:100].replace("\x00", "")
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
        # The recently seen list shows customers as much as results do: both are recorded.
        record_read(
            tenant=self.tenant,
            action=ReadAction.SEARCH,
            customer_ids=[c.pk for c in customers],
            request=request,
        )
        template = (
            "cxcore/_customer_results.html"
            if request.headers.get("HX-Request")
            else ("cxcore/customer_search.html")
        )
        return render(request, template, {"q": q, "customers": customers, "error": error})


class CustomerMixin(TenantPageMixin):
    def customer_or_404(self, pk: int) -> Customer:
        customer = customers_with_identifiers(self.tenant.organization).filter(pk=pk).first()
        if customer is None:
            raise Http404("No such customer.")
        return customer


class CustomerPageView(CustomerMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self.page(self.customer_or_404(pk))

    def page(self, customer: Customer, status: int = 200, **forms: Any) -> HttpResponse:
        before = None
        cursor = self.request.GET.get("before")
        if cursor:
            try:
                before = decode_cursor(cursor, shape=TIMELINE_POSITION)
            except DomainError as exc:
                raise Http404("No such page.") from exc
        episodes, following = customer_timeline(customer=customer, before=before, limit=PAGE_SIZE)
        older = encode_cursor(*following) if following else None
        tenant = self.tenant
        record_read(
            tenant=tenant,
            # An older page of the narrative is the timeline; the first is the customer page.
            action=ReadAction.TIMELINE if before else ReadAction.PAGE,
            customer_ids=[customer.pk],
            request=self.request,
        )
        context = {
            "customer": customer,
            "episodes": episodes,
            "older": older,
            "cases": self.cases(customer),
            "may_merge": tenant.is_manager_or_owner,
            "may_read_audit": tenant.is_owner,
            # The card's last changes, newest first ("Edited by Dana · 3 days ago: phone").
            "edits": list(
                customer.edits.select_related("by_user", "by_api_key").order_by("-at", "-id")[
                    :EDITS_SHOWN
                ]
            ),
            "default_tz": tenant.organization.time_zone,
            "experience_choices": EXPERIENCE_CHOICES,
            "notes_form": forms.get("notes_form") or NotesForm(initial={"notes": customer.notes}),
            "outreach_form": forms.get("outreach_form") or OutreachForm(),
            "experience_form": forms.get("experience_form") or ExperienceForm(),
            "episode_options": episode_options(episodes, time_zone=tenant.organization.time_zone),
        }
        return render(self.request, "cxcore/customer_page.html", context, status=status)

    def cases(self, customer: Customer) -> list[tuple[Any, bool]]:
        """The customer's cases, newest first, wherever they were opened (one narrative), each
        with whether this member may open its page (owners and managers, at their locations).

        Read through the reverse relation recovery's cases keep to the customer, so the core
        does not import the recovery app (DESIGN.md: dependencies run one way)."""
        tenant = self.tenant
        cases = customer.cases.select_related("location").order_by("-opened_at", "-id")
        return [
            (
                case,
                tenant.is_manager_or_owner
                and (
                    tenant.location_ids is None
                    or case.location_id is None
                    or case.location_id in tenant.location_ids
                ),
            )
            for case in cases[:CASES_SHOWN]
        ]


class CustomerNotesView(CustomerPageView):
    """Edit the staff notes on a customer (any member: notes are for every shift)."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return redirect("customer-page", pk)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        customer = self.customer_or_404(pk)
        form = NotesForm(request.POST)
        if not form.is_valid():
            return self.page(customer, status=400, notes_form=form)
        try:
            update_customer(
                customer=customer, notes=form.cleaned_data["notes"], by_user=self.tenant.user
            )
        except DomainError as exc:  # the customer was erased: nothing more is kept on them
            form.add_error("notes", exc.message)
            return self.page(customer, status=exc.status_code, notes_form=form)
        messages.success(request, "Notes saved.")
        return redirect("customer-page", pk)


class CustomerOutreachView(CustomerPageView):
    """Log a call, an email or a message to the customer: an outreach episode, which follows
    up a bad experience (the sweep then closes its case)."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return redirect("customer-page", pk)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        customer = self.customer_or_404(pk)
        form = OutreachForm(request.POST)
        if not form.is_valid():
            return self.page(customer, status=400, outreach_form=form)
        try:
            record_episode(
                organization=self.tenant.organization,
                data=EpisodeInput(
                    kind=EpisodeKind.OUTREACH,
                    customer_id=customer.pk,
                    location=self.tenant.resolve_location(None),
                    source=Source.STAFF,
                    summary=form.episode_summary(),
                ),
                author_user=self.tenant.user,
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
            return self.page(customer, status=400, outreach_form=form)
        messages.success(request, f"{dict(form.CHANNELS)[form.cleaned_data['channel']]} logged.")
        return redirect("customer-page", pk)


class CustomerExperienceView(CustomerPageView):
    """The customer page's one "correct the experience" control: staff choose an episode of
    the narrative and set its experience (HTMX swaps the episode and the card in place)."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return redirect("customer-page", pk)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        customer = self.customer_or_404(pk)
        form = ExperienceForm(request.POST)
        episode = None
        if form.is_valid():
            episode = (
                Episode.objects.for_tenant(self.tenant)
                .filter(customer_id=customer.pk, pk=form.cleaned_data["episode"])
                .select_related("location")
                .first()
            )
            if episode is None:
                form.add_error("episode", "Choose an episode of this customer's narrative.")
        if episode is None:
            return self.page(customer, status=400, experience_form=form)
        if episode.location is not None and not self.tenant.can_use_location(episode.location):
            # Reading the whole narrative is everyone's; correcting is a write where the
            # episode was logged, refused to a member limited elsewhere (as the API does).
            form.add_error(
                "episode", f"This was logged at {episode.location.name}: correct it from there."
            )
            return self.page(customer, status=403, experience_form=form)
        try:
            correct_experience(
                episode=episode,
                experience=form.cleaned_data["experience"],
                reason=form.cleaned_data["reason"],
                by_user=self.tenant.user,
            )
        except DomainError as exc:  # a reason that could spoof, or an erased customer
            form.add_error("reason" if exc.field == "reason" else "episode", exc.message)
            return self.page(customer, status=exc.status_code, experience_form=form)
        if not request.headers.get("HX-Request"):
            messages.success(request, "Experience corrected.")
            return redirect("customer-page", pk)
        episode = customer_timeline_episode(episode_id=episode.pk)
        context = {
            "e": episode,
            "customer": episode.customer,  # the card's last experience is swapped out of band
            "default_tz": self.tenant.organization.time_zone,
        }
        return render(request, "cxcore/_episode_corrected.html", context)

"""The till sidebar (/pos/): find the customer at the counter, see their story and open
prompts, act on a prompt, log a compliment or a complaint. Every member at a location uses it.

A form the till cannot accept (a "Done" that says nothing was done, a complaint without its
touchpoint) answers 422 with the sidebar showing the error on the field; pos_base.html tells
htmx to swap 422s in.
"""

from __future__ import annotations

from functools import cached_property, wraps
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views import View

from accounts.errors import DomainError
from accounts.models import Location
from accounts.tenancy import SESSION_LOCATION_KEY, Tenant, TenantPageMixin, tenant_for_request
from accounts.validators import valid_embed_origins
from cxcore.audit import record_read
from cxcore.headers import allow_framing
from cxcore.models import Customer, ReadAction, Source
from cxcore.selectors import search_box
from cxcore.services import EpisodeInput, record_episode
from cxcore.views import EXPERIENCE_CHOICES
from cxcore.vocabulary import Touchpoint
from recovery.services import (
    Actor,
    acknowledge_case,
    not_now,
    record_prompts_shown,
    resolve_case,
)
from recovery.sidebar import customer_sidebar, till_cases

UNPROCESSABLE = 422
SAY_WHAT_WAS_DONE = "What did you do? Tick it above, or say it in the note."
COMPLAINT_EXPERIENCES = (("-1", "Negative"), ("-2", "Very negative"))


def pos_frame_policy(view):
    """The sidebar may be embedded by our own pages and the origins the owner configured
    (validated when saved, accounts.forms): the project's policy with those frame-ancestors;
    every other page stays un-embeddable."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        tenant = tenant_for_request(request) if request.user.is_authenticated else None
        stored = tenant.organization.pos_embed_origins if tenant else ""
        allow_framing(response, valid_embed_origins(stored))
        return response

    return wrapped


class PosMixin(TenantPageMixin, View):
    @classmethod
    def as_view(cls, **initkwargs):
        return pos_frame_policy(super().as_view(**initkwargs))

    @cached_property
    def location(self):
        """The location chosen on this device (or the only one the member may use)."""
        return self.tenant.resolve_location(None)

    def actor(self) -> Actor:
        return Actor(user=self.tenant.user, location=self.location)

    def sidebar(
        self, customer_id: int, message: str = "", *, status: int = 200, **extra: Any
    ) -> HttpResponse:
        """The sidebar fragment; `extra` says how to show it this time: `collapsed` (case ids
        shown by their headline only), `resolve_error_case` and `resolve_error` (the prompt
        whose "Done" was refused, and why), `log_form` (the quick form to reopen, with what
        was typed and its errors)."""
        data = customer_sidebar(tenant=self.tenant, customer_id=customer_id, location=self.location)
        if data.customer is None:
            raise Http404("No such customer.")
        record_read(
            tenant=self.tenant,
            action=ReadAction.SIDEBAR,
            customer_ids=[data.customer.pk],
            request=self.request,
        )
        record_prompts_shown(cases=[p.case for p in data.prompts], actor=self.actor())
        context = {
            "sidebar": data,
            "message": message,
            "touchpoints": Touchpoint.choices,
            "experiences": EXPERIENCE_CHOICES,
            "complaint_experiences": COMPLAINT_EXPERIENCES,
            "collapsed": set(),
            "resolve_error_case": None,
            "resolve_error": "",
            "log_form": {},
            **extra,
        }
        return render(self.request, "recovery/_pos_sidebar.html", context, status=status)

    def customer_or_404(self, pk: int):
        customer = Customer.objects.for_tenant(self.tenant).filter(pk=pk).first()
        if customer is None:
            raise Http404("No such customer.")
        return customer


class PosView(PosMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        if self.location is None:
            return PosLocationView.picker(request, self.tenant, current=None)
        return render(
            request,
            "recovery/pos.html",
            {"location": self.location, "can_switch": self.tenant.locations()[1:2].exists()},
        )


class PosLocationView(PosMixin, View):
    """Staff pick their location once per device (it is kept in the session), and switch it
    from the till when they move."""

    @staticmethod
    def picker(request: HttpRequest, tenant: Tenant, current: Location | None) -> HttpResponse:
        return render(
            request,
            "recovery/pos_location.html",
            {"locations": tenant.locations().order_by("name"), "current": current},
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.picker(request, self.tenant, current=self.location)

    def post(self, request: HttpRequest) -> HttpResponse:
        slug = request.POST.get("location", "")
        try:
            location = self.tenant.resolve_location(slug[:60] or None)
        except DomainError:
            location = None
        if location is None:
            raise Http404("No such location.")
        request.session[SESSION_LOCATION_KEY] = location.pk
        return redirect("pos")


class PosLookupView(PosMixin, View):
    """Phone, card or email finds one customer; anything else searches names."""

    def post(self, request: HttpRequest) -> HttpResponse:
        """What the till's search box sends: `q` in the body, so the phone or email typed is
        in no URL (access logs redact lookups' queries anyway)."""
        return self.get(request)

    def get(self, request: HttpRequest) -> HttpResponse:
        typed = request.POST if request.method == "POST" else request.GET
        q = typed.get("q", "").strip()[:100].replace("\x00", "")
        org = self.tenant.organization
        if not q:
            return HttpResponse("")
        try:
            customers = list(search_box(organization=org, text=q)[:8])
        except DomainError as exc:
            return render(request, "recovery/_pos_results.html", {"error": exc.message, "q": q})
        if len(customers) == 1:
            return self.sidebar(customers[0].pk)  # the sidebar records its own read
        record_read(
            tenant=self.tenant,
            action=ReadAction.SEARCH,
            customer_ids=[c.pk for c in customers],
            request=request,
        )
        return render(request, "recovery/_pos_results.html", {"customers": customers, "q": q})


class PosCustomerView(PosMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self.sidebar(pk)


class PosCaseActionView(PosMixin, View):
    """Resolve (with the actions taken), acknowledge, or 'not now', from the prompt."""

    def post(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        # Any prompt this till was shown, wherever the case was opened (DESIGN.md invariant 4).
        case = till_cases(self.tenant).filter(pk=pk).select_related("organization").first()
        if case is None or action not in ("resolve", "acknowledge", "not-now"):
            raise Http404("No such case.")
        collapsed: set[int] = set()
        try:
            if action == "resolve":
                taken = [int(a) for a in request.POST.getlist("actions") if a.isdigit()][:20]
                note = request.POST.get("note", "")[:2000].replace("\x00", "").strip()
                if not taken and not note:
                    # "Followed up." says nothing to whoever reads the narrative next: ask.
                    return self.sidebar(
                        case.customer_id,
                        status=UNPROCESSABLE,
                        resolve_error_case=case.pk,
                        resolve_error=SAY_WHAT_WAS_DONE,
                    )
                resolve_case(case=case, note=note, action_ids=taken, actor=self.actor())
                message = "Thanks — logged, and the case is closed."
            elif action == "acknowledge":
                acknowledge_case(case=case, actor=self.actor())
                message = "Acknowledged."
            else:
                not_now(case=case, actor=self.actor())
                message = "OK — we will ask again next visit."
                collapsed = {case.pk}
        except DomainError as exc:
            message = exc.message
        return self.sidebar(case.customer_id, message, collapsed=collapsed)


class PosLogView(PosMixin, View):
    """Quick logging from the sidebar: a compliment, a complaint, a note."""

    KINDS = ("compliment", "complaint", "note")

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        customer = self.customer_or_404(pk)
        kind = request.POST.get("kind", "")
        if kind not in self.KINDS:
            return HttpResponseBadRequest("Choose compliment, complaint or note.")
        touchpoint = request.POST.get("touchpoint", "")
        experience = request.POST.get("experience", "")
        summary = request.POST.get("summary", "")[:4000].replace("\x00", "")
        errors = self.errors(kind, touchpoint=touchpoint, experience=experience, summary=summary)
        if errors:
            typed = {"touchpoint": touchpoint, "experience": experience, "summary": summary}
            return self.sidebar(
                customer.pk,
                status=UNPROCESSABLE,
                log_form={"kind": kind, "errors": errors, **typed},
            )
        try:
            record_episode(
                organization=self.tenant.organization,
                data=EpisodeInput(
                    kind=kind,
                    customer_id=customer.pk,
                    location=self.location,
                    source=Source.STAFF,
                    summary=summary,
                    touchpoints=[{"code": touchpoint, "third_party": False}]
                    if touchpoint in Touchpoint.values
                    else [],
                    experience=int(experience) if kind == "complaint" else None,
                ),
                author_user=self.tenant.user,
            )
        except DomainError as exc:
            return self.sidebar(customer.pk, exc.message)
        return self.sidebar(customer.pk, f"{kind.capitalize()} logged.")

    @staticmethod
    def errors(kind: str, *, touchpoint: str, experience: str, summary: str) -> dict[str, str]:
        """A complaint says where it went wrong and how badly (nothing is preselected, so
        staff choose); a note says something."""
        errors = {}
        if kind == "complaint":
            if touchpoint not in Touchpoint.values:
                errors["touchpoint"] = "Choose where it went wrong."
            if experience not in dict(COMPLAINT_EXPERIENCES):
                errors["experience"] = "Choose how bad it was."
        if kind == "note" and not summary.strip():
            errors["summary"] = "Write the note."
        return errors

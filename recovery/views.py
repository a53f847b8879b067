"""Web pages of the recovery app: playbooks (managers). The queue arrives with its issue."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from functools import cached_property, wraps

from django.contrib import messages
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.decorators.clickjacking import xframe_options_exempt

from accounts.errors import DomainError
from accounts.models import Membership, Role
from accounts.tenancy import SESSION_LOCATION_KEY, TenantPageMixin, tenant_for_request
from cxcore.api.pagination import decode_cursor, encode_cursor
from cxcore.models import Customer, Episode, Source
from cxcore.selectors import search_box
from cxcore.services import EpisodeInput, record_episode
from cxcore.views import EXPERIENCE_CHOICES
from cxcore.vocabulary import Touchpoint
from recovery.forms import BulkForm, InsightsForm, PlaybookForm, QueueFilterForm
from recovery.insights import summary as insights_summary
from recovery.models import Playbook
from recovery.selectors import case_detail, case_queue, cases_for, queue_cases
from recovery.services import (
    Actor,
    acknowledge_case,
    assign_case,
    create_playbook,
    dismiss_case,
    not_now,
    record_prompts_shown,
    reorder_playbooks,
    resolve_case,
    set_daily_digest,
    update_playbook,
)
from recovery.sidebar import customer_sidebar

MANAGERS = (Role.OWNER, Role.MANAGER)


class PlaybookListView(TenantPageMixin, View):
    required_roles = MANAGERS

    def get(self, request: HttpRequest) -> HttpResponse:
        playbooks = Playbook.objects.for_tenant(self.tenant).order_by("position", "id")
        return render(request, "recovery/playbooks.html", {"playbooks": playbooks})


class PlaybookMoveView(TenantPageMixin, View):
    """Move a playbook up or down the matching order (the first match wins)."""

    required_roles = MANAGERS

    def post(self, request: HttpRequest, pk: int, direction: str) -> HttpResponse:
        order = list(
            Playbook.objects.for_tenant(self.tenant)
            .order_by("position", "id")
            .values_list("pk", flat=True)
        )
        if pk not in order or direction not in ("up", "down"):
            raise Http404("No such playbook.")
        i = order.index(pk)
        j = i - 1 if direction == "up" else i + 1
        if 0 <= j < len(order):
            order[i], order[j] = order[j], order[i]
            try:
                reorder_playbooks(organization=self.tenant.organization, order=order)
            except DomainError:  # a playbook was added meanwhile: show the list as it is now
                messages.info(request, "The playbooks changed meanwhile; nothing was moved.")
        return redirect("playbooks")


class PlaybookEditView(TenantPageMixin, View):
    required_roles = MANAGERS

    def _playbook(self, pk: int | None) -> Playbook:
        if pk is None:
            return Playbook(organization=self.tenant.organization)
        playbook = Playbook.objects.for_tenant(self.tenant).filter(pk=pk).first()
        if playbook is None:
            raise Http404("No such playbook.")
        return playbook

    def get(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        playbook = self._playbook(pk)
        return render(
            request,
            "recovery/playbook_form.html",
            {"form": PlaybookForm(instance=playbook), "playbook": playbook},
        )

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        playbook = self._playbook(pk)
        form = PlaybookForm(request.POST, instance=Playbook(organization=playbook.organization))
        if not form.is_valid():
            context = {"form": form, "playbook": playbook}
            return render(request, "recovery/playbook_form.html", context, status=400)
        if playbook.pk:
            update_playbook(playbook=playbook, **form.playbook_fields())
        else:
            create_playbook(organization=self.tenant.organization, **form.playbook_fields())
        return redirect("playbooks")


# --- the till sidebar (/pos/) ----------------------------------------------------------------


def pos_frame_policy(view):
    """The sidebar may be embedded only by the origins the owner configured (CSP
    frame-ancestors); everything else stays un-embeddable."""

    @xframe_options_exempt
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        tenant = tenant_for_request(request) if request.user.is_authenticated else None
        origins = tenant.organization.pos_embed_origins.split() if tenant else []
        response["Content-Security-Policy"] = "frame-ancestors " + " ".join(["'self'", *origins])
        return response

    return wrapped


class PosMixin(TenantPageMixin):
    @classmethod
    def as_view(cls, **initkwargs):
        return pos_frame_policy(super().as_view(**initkwargs))

    @cached_property
    def location(self):
        """The location chosen on this device (or the only one the member may use)."""
        return self.tenant.resolve_location(None)

    def actor(self) -> Actor:
        return Actor(user=self.request.user, location=self.location)

    def sidebar(self, customer_id: int, message: str = "") -> HttpResponse:
        data = customer_sidebar(tenant=self.tenant, customer_id=customer_id, location=self.location)
        if data.customer is None:
            raise Http404("No such customer.")
        record_prompts_shown(cases=[p.case for p in data.prompts], actor=self.actor())
        context = {
            "sidebar": data,
            "message": message,
            "touchpoints": Touchpoint.choices,
            "experiences": EXPERIENCE_CHOICES,
        }
        return render(self.request, "recovery/_pos_sidebar.html", context)

    def customer_or_404(self, pk: int):
        customer = Customer.objects.for_tenant(self.tenant).filter(pk=pk).first()
        if customer is None:
            raise Http404("No such customer.")
        return customer


class PosView(PosMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        if self.location is None:
            return render(
                request, "recovery/pos_location.html", {"locations": self.tenant.locations()}
            )
        return render(request, "recovery/pos.html", {"location": self.location})


class PosLocationView(PosMixin, View):
    """Staff pick their location once per device; it is kept in the session."""

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

    def get(self, request: HttpRequest) -> HttpResponse:
        q = request.GET.get("q", "").strip()[:100].replace("\x00", "")
        org = self.tenant.organization
        if not q:
            return HttpResponse("")
        try:
            customers = list(search_box(organization=org, text=q)[:8])
        except DomainError as exc:
            return render(request, "recovery/_pos_results.html", {"error": exc.message, "q": q})
        if len(customers) == 1:
            return self.sidebar(customers[0].pk)
        return render(request, "recovery/_pos_results.html", {"customers": customers, "q": q})


class PosCustomerView(PosMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self.sidebar(pk)


class PosCaseActionView(PosMixin, View):
    """Resolve (with the actions taken), acknowledge, or 'not now', from the prompt."""

    def post(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        case = cases_for(self.tenant).filter(pk=pk).select_related("organization").first()
        if case is None or action not in ("resolve", "acknowledge", "not-now"):
            raise Http404("No such case.")
        try:
            if action == "resolve":
                taken = [int(a) for a in request.POST.getlist("actions") if a.isdigit()][:20]
                note = request.POST.get("note", "")[:2000]
                resolve_case(case=case, note=note, action_ids=taken, actor=self.actor())
                message = "Thanks — logged, and the case is closed."
            elif action == "acknowledge":
                acknowledge_case(case=case, actor=self.actor())
                message = "Acknowledged."
            else:
                not_now(case=case, actor=self.actor())
                message = "OK — we will ask again next visit."
        except DomainError as exc:
            message = exc.message
        return self.sidebar(case.customer_id, message)


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
        try:
            record_episode(
                organization=self.tenant.organization,
                data=EpisodeInput(
                    kind=kind,
                    customer_id=customer.pk,
                    location=self.location,
                    source=Source.STAFF,
                    summary=request.POST.get("summary", "")[:4000].replace("\x00", ""),
                    touchpoints=[{"code": touchpoint, "third_party": False}]
                    if touchpoint in Touchpoint.values
                    else [],
                    experience=int(experience)
                    if experience in ("-2", "-1", "0", "1", "2")
                    else None,
                ),
                author_user=request.user,
            )
        except DomainError as exc:
            return self.sidebar(customer.pk, exc.message)
        return self.sidebar(customer.pk, f"{kind.capitalize()} logged.")


# --- the owner queue (/recovery/) ------------------------------------------------------------

QUEUE_PAGE = 50


class QueueMixin(TenantPageMixin):
    required_roles = MANAGERS

    def filters(self) -> dict:
        form = QueueFilterForm(self.request.GET)
        form.is_valid()  # bad values are dropped, not errors: it is a filter bar
        return {k: v for k, v in form.cleaned_data.items() if v not in (None, "", False)}

    def queue(self):
        return queue_cases(
            tenant=self.tenant,
            filters=self.filters(),
            me_id=self.request.user.pk,
            now=timezone.now(),
        )

    def actor(self) -> Actor:
        return Actor(user=self.request.user)


class QueueView(QueueMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        after = None
        cursor = request.GET.get("after")
        if cursor:
            try:
                after = decode_cursor(cursor, shape=(int, datetime, int))
            except DomainError as exc:
                raise Http404("No such page.") from exc
        cases = case_queue(self.queue(), after=after, limit=QUEUE_PAGE + 1)
        more = None
        if len(cases) > QUEUE_PAGE:
            cases = cases[:QUEUE_PAGE]
            last = cases[-1]
            more = encode_cursor(last.severity, last.opened_at, last.pk)
        params = request.GET.copy()
        params.pop("after", None)
        context = {
            "cases": cases,
            "more": more,
            "query": params.urlencode(),
            "form": QueueFilterForm(request.GET),
            "members": Membership.objects.filter(organization=self.tenant.organization)
            .select_related("user")
            .order_by("user__email"),
            "locations": self.tenant.locations(),
            "now": timezone.now(),
        }
        template = (
            "recovery/_queue_rows.html"
            if request.headers.get("HX-Request")
            else "recovery/queue.html"
        )
        return render(request, template, context)


class QueueExportView(QueueMixin, View):
    """The filtered cases as CSV, streamed in keyset pages (constant memory)."""

    def get(self, request: HttpRequest) -> StreamingHttpResponse:
        qs = self.queue()

        def rows():
            writer = csv.writer(_Echo())
            yield writer.writerow(
                ["id", "kind", "status", "severity", "customer", "location", "touchpoints",
                 "opened_at", "ack_due_at", "due_at", "acknowledged_at", "assignee", "escalated_at"]
            )  # fmt: skip
            after = None
            while True:
                page = case_queue(qs, after=after, limit=500)
                for c in page:
                    yield writer.writerow(
                        [c.pk, c.kind, c.status, c.severity, c.customer.display_name,
                         c.location.slug if c.location else "", " ".join(c.touchpoints),
                         c.opened_at.isoformat(), c.ack_due_at.isoformat(), c.due_at.isoformat(),
                         c.acknowledged_at.isoformat() if c.acknowledged_at else "",
                         c.assignee.email if c.assignee else "",
                         c.escalated_at.isoformat() if c.escalated_at else ""]
                    )  # fmt: skip
                if len(page) < 500:
                    return
                after = (page[-1].severity, page[-1].opened_at, page[-1].pk)

        response = StreamingHttpResponse(rows(), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="recovery-cases.csv"'
        return response


class _Echo:
    def write(self, value: str) -> str:
        return value


class QueueCaseActionView(QueueMixin, View):
    """Assign to me, acknowledge: one row, updated in place."""

    def post(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        case = cases_for(self.tenant).filter(pk=pk).select_related("organization").first()
        if case is None or action not in ("assign-me", "acknowledge"):
            raise Http404("No such case.")
        try:
            if action == "assign-me":
                assign_case(case=case, assignee=request.user, actor=self.actor())
            else:
                acknowledge_case(case=case, actor=self.actor())
        except DomainError as exc:
            messages.error(request, exc.message)
        case = case_queue(cases_for(self.tenant).filter(pk=pk), after=None, limit=1)[0]
        return render(request, "recovery/_queue_row.html", {"c": case, "now": timezone.now()})


class QueueBulkView(QueueMixin, View):
    def post(self, request: HttpRequest) -> HttpResponse:
        ids = [int(i) for i in request.POST.getlist("cases") if i.isdigit()][:500]
        cases = list(cases_for(self.tenant).filter(pk__in=ids).select_related("organization"))
        form = BulkForm(request.POST, case_ids=[c.pk for c in cases])
        if not form.is_valid():
            messages.error(request, "Choose cases and an action.")
            return redirect("queue")
        action, done = form.cleaned_data["action"], 0
        assignee = None
        if action == "assign":
            member = (
                Membership.objects.filter(
                    organization=self.tenant.organization, user_id=form.cleaned_data["assignee"]
                )
                .select_related("user")
                .first()
            )
            if member is None:
                messages.error(request, "Choose someone from this organization.")
                return redirect("queue")
            assignee = member.user
        elif not (form.cleaned_data["reason"] or "").strip():
            messages.error(request, "Say why these cases are dismissed.")
            return redirect("queue")
        for case in cases:
            try:
                if action == "assign":
                    assign_case(case=case, assignee=assignee, actor=self.actor())
                else:
                    dismiss_case(case=case, reason=form.cleaned_data["reason"], actor=self.actor())
                done += 1
            except DomainError:
                continue  # closed meanwhile: nothing to do
        messages.success(request, f"{done} case{'s' if done != 1 else ''} updated.")
        return redirect(f"{reverse('queue')}?{request.POST.get('query', '')}")


class CasePageView(QueueMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self.page(pk)

    def page(self, pk: int, status: int = 200) -> HttpResponse:
        case = case_detail(cases_for(self.tenant), pk)
        if case is None:
            raise Http404("No such case.")
        trigger = next(iter(case.triggers.all()), None)
        around = trigger.occurred_at if trigger else case.opened_at
        narrative = list(
            Episode.objects.filter(customer_id=case.customer_id)
            .filter(occurred_at__gte=around - timedelta(days=30))
            .select_related("location")
            .order_by("-occurred_at", "-id")[:40]
        )
        context = {"case": case, "narrative": narrative, "now": timezone.now(),
                   "default_tz": self.tenant.organization.time_zone}  # fmt: skip
        htmx = self.request.headers.get("HX-Request")
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
                assign_case(case=case, assignee=request.user, actor=self.actor())
            else:
                return HttpResponseBadRequest("Unknown action.")
        except DomainError as exc:
            messages.error(request, exc.message)
            return self.page(pk, status=400 if exc.status_code == 400 else 409)
        return self.page(pk)


class InsightsView(QueueMixin, View):
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


class DigestToggleView(QueueMixin, View):
    """Owners and managers opt in to (or out of) the daily digest."""

    def post(self, request: HttpRequest) -> HttpResponse:
        wanted = request.POST.get("daily_digest") == "on"
        set_daily_digest(membership=self.tenant.membership, enabled=wanted)
        messages.success(request, "Daily digest on." if wanted else "Daily digest off.")
        return redirect("queue")

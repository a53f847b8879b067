"""The owners' and managers' queue (/recovery/): the open cases most severe first, filtered
(`recovery.filters.CaseFilter`, as in the API), paged by keyset, exported as CSV, acted on row
by row or in bulk; and the daily digest toggle shown on it."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View

from accounts.errors import DomainError, InvalidInput
from accounts.lockout import locked_out_emails
from accounts.models import Membership
from cxcore.db_router import replica_reads, replica_stream
from cxcore.keyset import decode_cursor, encode_cursor
from cxcore.spreadsheets import spreadsheet_safe
from recovery.filters import CaseFilter
from recovery.forms import BulkForm
from recovery.selectors import QUEUE_POSITION, case_lines, case_queue, cases_for, queue_rows
from recovery.services import acknowledge_case, assign_case, dismiss_case, set_daily_digest
from recovery.views.managers import ManagersPageMixin

QUEUE_PAGE = 50
EXPORT_PAGE = 500


class QueueView(ManagersPageMixin, View):
    @replica_reads()
    def get(self, request: HttpRequest) -> HttpResponse:
        filters = CaseFilter(request.GET, request=request)
        after = None
        cursor = request.GET.get("after")
        if cursor:
            try:
                after = decode_cursor(cursor, shape=QUEUE_POSITION)
            except DomainError as exc:
                raise Http404("No such page.") from exc
        # A bad filter is named on the filter bar; the cases listed are those of the others.
        cases, following = case_queue(filters.qs, after=after, limit=QUEUE_PAGE)
        params = request.GET.copy()
        params.pop("after", None)
        now = timezone.now()
        context = {
            "rows": case_lines(cases, now=now),
            "more": encode_cursor(*following) if following else None,
            "query": params.urlencode(),
            "form": filters.form,
            "members": self.members(),
            "locations": self.tenant.locations(),
            "now": now,
        }
        if request.headers.get("HX-Request"):
            template = "recovery/_queue_rows.html"
        else:
            template = "recovery/queue.html"
            # Managers lift a member's login lockout here (owners on their keys page too).
            context["locked_out"] = locked_out_emails(organization=self.tenant.organization)
        return render(request, template, context, status=200 if filters.is_valid() else 400)

    def members(self) -> list[Membership]:
        """The organization's people, by the name the queue shows them by."""
        members = self.tenant.memberships().select_related("user")
        return sorted(members, key=lambda m: (m.user.display_name.lower(), m.user.pk))


class QueueExportView(ManagersPageMixin, View):
    """The filtered cases as CSV, streamed in keyset pages (constant memory)."""

    def get(self, request: HttpRequest) -> HttpResponseBase:
        filters = CaseFilter(request.GET, request=request)
        if not filters.is_valid():  # a file without the filter asked for would mislead
            problems = [f"{name}: {' '.join(errors)}" for name, errors in filters.errors.items()]
            return HttpResponseBadRequest("\n".join(problems), content_type="text/plain")
        qs = filters.qs

        def rows():
            writer = csv.writer(_Echo())
            cell = spreadsheet_safe
            yield writer.writerow(
                ["id", "kind", "status", "severity", "customer", "location", "touchpoints",
                 "opened_at", "ack_due_at", "due_at", "acknowledged_at", "assignee", "escalated_at"]
            )  # fmt: skip
            after = None
            while True:
                page, after = case_queue(qs, after=after, limit=EXPORT_PAGE)
                for c in page:
                    yield writer.writerow(
                        [c.pk, c.kind, c.status, c.severity, cell(c.customer.display_name),
                         c.location.slug if c.location else "", " ".join(c.touchpoints),
                         c.opened_at.isoformat(), c.ack_due_at.isoformat(), c.due_at.isoformat(),
                         c.acknowledged_at.isoformat() if c.acknowledged_at else "",
                         cell(c.assignee.email) if c.assignee else "",
                         c.escalated_at.isoformat() if c.escalated_at else ""]
                    )  # fmt: skip
                if after is None:
                    return

        response = StreamingHttpResponse(replica_stream(rows()), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="recovery-cases.csv"'
        return response


class _Echo:
    def write(self, value: str) -> str:
        return value


class QueueCaseActionView(ManagersPageMixin, View):
    """Assign to me, acknowledge: one row, updated in place."""

    def post(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        case = cases_for(self.tenant).filter(pk=pk).select_related("organization").first()
        if case is None or action not in ("assign-me", "acknowledge"):
            raise Http404("No such case.")
        try:
            if action == "assign-me":
                assign_case(case=case, assignee=self.tenant.user, actor=self.actor())
            else:
                acknowledge_case(case=case, actor=self.actor())
        except DomainError as exc:
            messages.error(request, exc.message)
        now = timezone.now()
        (row,) = case_lines([queue_rows(cases_for(self.tenant)).get(pk=pk)], now=now)
        return render(request, "recovery/_queue_row.html", {"row": row, "now": now})


class QueueBulkView(ManagersPageMixin, View):
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
                self.tenant.memberships()
                .filter(user_id=form.cleaned_data["assignee"])
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
            except InvalidInput as exc:  # the reason itself (cxcore.text_rules): say so, once
                messages.error(request, exc.message)
                break
            except DomainError:
                continue  # closed meanwhile: nothing to do
        messages.success(request, f"{done} case{'s' if done != 1 else ''} updated.")
        return redirect(f"{reverse('queue')}?{request.POST.get('query', '')}")


class DigestToggleView(ManagersPageMixin, View):
    """Owners and managers opt in to (or out of) the daily digest."""

    def post(self, request: HttpRequest) -> HttpResponse:
        wanted = request.POST.get("daily_digest") == "on"
        membership = self.tenant.membership
        assert membership is not None  # a managers' page: the role it required is a membership's
        set_daily_digest(membership=membership, enabled=wanted)
        messages.success(request, "Daily digest on." if wanted else "Daily digest off.")
        return redirect("queue")

"""The owners' settings page for what comes in: Square, and the reason map."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from accounts.errors import DomainError
from accounts.models import Location, Role
from accounts.tenancy import TenantPageMixin
from connectors import square
from connectors.forms import ReasonMapForm, SquareConnectForm, invalid_input_message
from connectors.models import SquareConnection
from connectors.reasons import DEFAULT_REASON_MAP, entries_as_lines, entries_from_lines
from connectors.services import (
    connect_square,
    notification_url,
    reason_entries,
    revoke_square,
    set_reason_map,
)
from cxcore.vocabulary import Touchpoint


class ConnectorSettingsView(TenantPageMixin, View):
    required_roles = (Role.OWNER,)

    def _render(
        self,
        request: HttpRequest,
        *,
        square_form: SquareConnectForm | None = None,
        reason_form: ReasonMapForm | None = None,
        status: int = 200,
    ) -> HttpResponse:
        organization = self.tenant.organization
        connection = SquareConnection.objects.for_tenant(self.tenant).active().first()
        slugs = dict(Location.objects.filter(organization=organization).values_list("pk", "slug"))
        lines = ""
        if connection is not None:
            lines = "\n".join(
                f"{square_id} = {slugs.get(pk, '?')}"
                for square_id, pk in sorted(connection.locations.items())
            )
        context = {
            "connection": connection,
            "notification_url": notification_url(connection) if connection else "",
            "events": sorted(square.USED_EVENTS),
            "square_form": square_form or SquareConnectForm(initial={"locations": lines}),
            "reason_form": reason_form
            or ReasonMapForm(
                initial={"entries": entries_as_lines(reason_entries(organization=organization))}
            ),
            "defaults": entries_as_lines(DEFAULT_REASON_MAP),
            "touchpoints": Touchpoint.values,
            "locations": self.tenant.locations(),
        }
        return render(request, "connectors/settings.html", context, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = SquareConnectForm(request.POST)
        if not form.is_valid():
            return self._render(request, square_form=form, status=400)
        try:
            _connection, created = connect_square(
                organization=self.tenant.organization,
                signature_key=form.cleaned_data["signature_key"],
                locations=form.cleaned_data["locations"],
                by_user=self.tenant.user,
            )
        except DomainError as exc:
            form.add_error(None, invalid_input_message(exc))
            return self._render(request, square_form=form, status=400)
        messages.success(request, "Square connected." if created else "Square settings saved.")
        return redirect("connector-settings")


class SquareRevokeView(TenantPageMixin, View):
    required_roles = (Role.OWNER,)

    def post(self, request: HttpRequest) -> HttpResponse:
        if revoke_square(organization=self.tenant.organization):
            messages.success(request, "Square disconnected: its notifications are refused now.")
        return redirect("connector-settings")


class ReasonMapPageView(ConnectorSettingsView):
    def post(self, request: HttpRequest) -> HttpResponse:
        form = ReasonMapForm(request.POST)
        if not form.is_valid():
            return self._render(request, reason_form=form, status=400)
        try:
            entries = entries_from_lines(form.cleaned_data["entries"])
        except DomainError as exc:
            form.add_error("entries", invalid_input_message(exc))
            return self._render(request, reason_form=form, status=400)
        set_reason_map(organization=self.tenant.organization, entries=entries)
        messages.success(request, "Reason map saved.")
        return redirect("connector-settings")

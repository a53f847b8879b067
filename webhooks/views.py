"""The owners' webhooks page: add, turn off and on, test and delete endpoints.

A new endpoint's secret is in the answer to the POST that made it and nowhere else (not the
session, not the cache, not a URL), like a new API key (accounts.views.ApiKeyListView)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views import View

from accounts.errors import DomainError
from accounts.forms import claim_form
from accounts.models import Role
from accounts.tenancy import TenantPageMixin
from webhooks import services
from webhooks.forms import EndpointForm
from webhooks.models import WebhookEndpoint


class WebhookSettingsView(TenantPageMixin, View):
    required_roles = (Role.OWNER,)

    def _render(
        self,
        request: HttpRequest,
        form: EndpointForm,
        new_secret: str = "",
        already_created: WebhookEndpoint | None = None,
    ) -> HttpResponse:
        context = {
            "endpoints": WebhookEndpoint.objects.for_tenant(self.tenant),
            "form": form,
            "new_secret": new_secret,
            "already_created": already_created,
        }
        response = render(request, "webhooks/settings.html", context)
        add_never_cache_headers(response)
        return response

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, EndpointForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = EndpointForm(request.POST)
        if not form.is_valid():
            return self._render(request, form)
        with claim_form("webhook-form", self.tenant, form.cleaned_data["form_id"]) as claim:
            if not claim.fresh:
                created = WebhookEndpoint.objects.for_tenant(self.tenant).filter(pk=claim.earlier)
                return self._render(request, EndpointForm(), already_created=created.first())
            try:
                endpoint, secret = services.create_endpoint(
                    organization=self.tenant.organization,
                    url=form.cleaned_data["url"],
                    events=form.cleaned_data["events"],
                    description=form.cleaned_data["description"],
                )
            except DomainError as exc:  # nothing was created: the claim is given back
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
                return self._render(request, form)
            claim.created = endpoint.pk
        return self._render(request, EndpointForm(), new_secret=secret)


class WebhookEndpointActionView(TenantPageMixin, View):
    """POST action=disable|enable|test|delete on one endpoint."""

    required_roles = (Role.OWNER,)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        endpoint = WebhookEndpoint.objects.for_tenant(self.tenant).filter(pk=pk).first()
        if endpoint is None:
            raise Http404("No such endpoint.")
        action = request.POST.get("action")
        try:
            if action == "disable":
                services.update_endpoint(endpoint=endpoint, fields={"enabled": False})
                messages.success(request, f"Stopped sending to {endpoint.url}.")
            elif action == "enable":
                services.update_endpoint(endpoint=endpoint, fields={"enabled": True})
                messages.success(request, f"Sending to {endpoint.url} again.")
            elif action == "test":
                services.send_test(endpoint=endpoint)
                messages.success(request, f"A webhook.test is on its way to {endpoint.url}.")
            elif action == "delete":
                services.delete_endpoint(endpoint=endpoint)
                messages.success(request, f"Deleted {endpoint.url}.")
            else:
                messages.error(request, "Unknown action.")
        except DomainError as exc:
            messages.error(request, exc.message)
        return redirect("webhook-settings")

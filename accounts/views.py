from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from accounts.forms import ApiKeyForm, EmbedOriginsForm
from accounts.models import ApiKey, Role
from accounts.services import create_api_key, revoke_api_key, set_pos_embed_origins
from accounts.tenancy import TenantPageMixin

NEW_KEY_SESSION = "new_api_key"


class ApiKeyListView(TenantPageMixin, View):
    """Owners create and revoke their organization's API keys; a new key is shown once."""

    required_roles = (Role.OWNER,)

    def _render(self, request: HttpRequest, form: ApiKeyForm, new_key: str = "") -> HttpResponse:
        keys = ApiKey.objects.for_tenant(self.tenant).select_related("location")
        embed = EmbedOriginsForm(initial={"origins": self.tenant.organization.pos_embed_origins})
        context = {"keys": keys, "form": form, "new_key": new_key, "embed_form": embed}
        return render(request, "accounts/api_keys.html", context)

    def get(self, request: HttpRequest) -> HttpResponse:
        # The new key travels through the session once, so a reload cannot show it again
        # (nor create a second key, as re-posting the form would).
        new_key = request.session.pop(NEW_KEY_SESSION, "")
        return self._render(request, ApiKeyForm(locations=self.tenant.locations()), new_key)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ApiKeyForm(request.POST, locations=self.tenant.locations())
        if not form.is_valid():
            return self._render(request, form)
        _, raw_key = create_api_key(
            organization=self.tenant.organization,
            location=form.cleaned_data["location"],
            name=form.cleaned_data["name"],
            created_by=self.tenant.user,
        )
        request.session[NEW_KEY_SESSION] = raw_key
        return redirect("api-keys")


class ApiKeyRevokeView(TenantPageMixin, View):
    required_roles = (Role.OWNER,)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        api_key = ApiKey.objects.for_tenant(self.tenant).filter(pk=pk).first()
        if api_key is None:
            raise Http404("No such key.")
        if revoke_api_key(api_key=api_key):
            messages.success(request, f"Revoked {api_key.name}.")
        return redirect("api-keys")


class EmbedOriginsView(TenantPageMixin, View):
    """Owners name the POS origins allowed to embed the till sidebar in an iframe."""

    required_roles = (Role.OWNER,)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = EmbedOriginsForm(request.POST)
        if form.is_valid():
            set_pos_embed_origins(
                organization=self.tenant.organization, origins=form.cleaned_data["origins"]
            )
            messages.success(request, "Saved the POS systems allowed to embed the sidebar.")
        else:
            messages.error(request, "; ".join(str(error) for error in form.errors["origins"]))
        return redirect("api-keys")

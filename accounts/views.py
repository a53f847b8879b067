from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views import View

from accounts.forms import ApiKeyForm, EmbedOriginsForm, claim_form
from accounts.lockout import locked_out_emails
from accounts.models import ApiKey, Role
from accounts.services import (
    create_api_key,
    revoke_api_key,
    set_pos_embed_origins,
    unlock_login,
)
from accounts.tenancy import TenantPageMixin

# Where sessions kept a new key before the secret stopped travelling through them; a session
# from then loses it at the next visit to the page.
OLD_NEW_KEY_SESSION = "new_api_key"


class ApiKeyListView(TenantPageMixin, View):
    """Owners create and revoke their organization's API keys.

    A new key's secret is in the answer to the POST that made it, and nowhere else: not the
    session, not the cache, not a URL (which access logs and browser history keep). That answer
    is `Cache-Control: no-store`. Reloading it re-posts the form, whose one-time id
    (ApiKeyForm.form_id) then creates nothing and says the key exists: the secret cannot be
    shown twice, as nothing kept it.
    """

    required_roles = (Role.OWNER,)

    def _render(
        self,
        request: HttpRequest,
        form: ApiKeyForm,
        new_key: str = "",
        already_created: ApiKey | None = None,
    ) -> HttpResponse:
        keys = ApiKey.objects.for_tenant(self.tenant).select_related("location")
        embed = EmbedOriginsForm(initial={"origins": self.tenant.organization.pos_embed_origins})
        context = {
            "keys": keys,
            "form": form,
            "new_key": new_key,
            "already_created": already_created,
            "embed_form": embed,
            "locked_out": locked_out_emails(organization=self.tenant.organization),
        }
        response = render(request, "accounts/api_keys.html", context)
        add_never_cache_headers(response)
        return response

    def _blank_form(self) -> ApiKeyForm:
        return ApiKeyForm(locations=self.tenant.locations())

    def get(self, request: HttpRequest) -> HttpResponse:
        request.session.pop(OLD_NEW_KEY_SESSION, None)
        return self._render(request, self._blank_form())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ApiKeyForm(request.POST, locations=self.tenant.locations())
        if not form.is_valid():
            return self._render(request, form)
        with claim_form("api-key-form", self.tenant, form.cleaned_data["form_id"]) as claim:
            if not claim.fresh:
                created = ApiKey.objects.for_tenant(self.tenant).filter(pk=claim.earlier).first()
                return self._render(request, self._blank_form(), already_created=created)
            api_key, raw_key = create_api_key(
                organization=self.tenant.organization,
                location=form.cleaned_data["location"],
                name=form.cleaned_data["name"],
                created_by=self.tenant.user,
            )
            claim.created = api_key.pk
        return self._render(request, self._blank_form(), new_key=raw_key)


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


class LoginUnlockView(TenantPageMixin, View):
    """Owners and managers lift a login lockout for one of their organization's members (a
    barista who mistyped at opening time should not wait for the owner). Owners see the list
    on their API keys page, managers on the queue; each goes back where they came from."""

    required_roles = (Role.OWNER, Role.MANAGER)

    def post(self, request: HttpRequest) -> HttpResponse:
        email = request.POST.get("email", "").strip().lower()
        organization = self.tenant.organization
        if email not in locked_out_emails(organization=organization):
            raise Http404("No such locked-out member.")
        unlock_login(email=email)
        messages.success(request, f"{email} can log in again.")
        return redirect("api-keys" if self.tenant.is_owner else "queue")

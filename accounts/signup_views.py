"""Sign-up, switching organization and the profile page: the pages about a person rather
than one organization's objects."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from accounts.errors import DomainError
from accounts.lockout import client_ip
from accounts.models import User
from accounts.services.profile import set_display_name
from accounts.services.signup import (
    SignupClosed,
    SignupInput,
    sign_up,
    signup_is_open,
    signup_retry_after,
)
from accounts.settings_views import add_domain_error
from accounts.signup_forms import ProfileForm, SignupForm
from accounts.tenancy import (
    SESSION_LOCATION_KEY,
    SESSION_ORG_KEY,
    Tenant,
    TenantPageMixin,
    memberships_for,
)

LOGIN_BACKEND = "django.contrib.auth.backends.ModelBackend"


def signed_in(tenant: Tenant) -> User:
    """The person behind a page's tenant (pages are signed in: TenantPageMixin)."""
    if tenant.user is None:
        raise Http404("Nothing here for you.")
    return tenant.user


class SignupView(View):
    """/accounts/signup/: open by default; with SIGNUP_OPEN=false only while no organization
    exists (a private install's first run), else a 404."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not signup_is_open():
            raise Http404("Sign-up is closed on this installation.")
        return super().dispatch(request, *args, **kwargs)

    def render_form(self, request: HttpRequest, form: SignupForm, status: int = 200) -> Any:
        return render(request, "accounts/signup.html", {"form": form}, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.render_form(request, SignupForm(with_account=not request.user.is_authenticated))

    def post(self, request: HttpRequest) -> HttpResponse:
        wait = signup_retry_after(client_ip(request))
        if wait is not None:
            response = render(request, "accounts/signup_throttled.html", {"wait": wait}, status=429)
            response["Retry-After"] = str(wait)
            return response
        signed_in = request.user if request.user.is_authenticated else None
        form = SignupForm(request.POST, with_account=signed_in is None)
        if not form.is_valid():
            return self.render_form(request, form, status=400)
        data = form.cleaned_data
        try:
            user, organization = sign_up(
                data=SignupInput(
                    organization_name=data["organization_name"],
                    country=data["country"],
                    time_zone=data["time_zone"],
                    location_name=data["location_name"],
                    owner_name=data.get("owner_name", ""),
                    email=data.get("email", ""),
                    password=data.get("password", ""),
                ),
                user=signed_in,
            )
        except SignupClosed as exc:
            raise Http404(exc.message) from exc
        except DomainError as error:
            add_domain_error(form, error)
            return self.render_form(request, form, status=400)
        if signed_in is None:
            login(request, user, backend=LOGIN_BACKEND)
        request.session[SESSION_ORG_KEY] = organization.pk
        request.session.pop(SESSION_LOCATION_KEY, None)
        messages.success(request, f"Welcome to Comeback: {organization.name} is set up.")
        return redirect("settings")


class SwitchOrganizationView(TenantPageMixin, View):
    """The top bar's switcher: work in another organization the user is an active member of.
    Any other id is a 404, whoever's it is."""

    def post(self, request: HttpRequest) -> HttpResponse:
        raw = request.POST.get("organization", "")
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
            raise Http404("No such organization.")
        membership = (
            memberships_for(signed_in(self.tenant)).filter(organization_id=int(raw)).first()
        )
        if membership is None:
            raise Http404("No such organization.")
        request.session[SESSION_ORG_KEY] = membership.organization_id
        # A location of the other organization means nothing here: the till asks again.
        request.session.pop(SESSION_LOCATION_KEY, None)
        messages.success(request, f"You are working in {membership.organization.name}.")
        return redirect(settings.LOGIN_REDIRECT_URL)


class ProfileView(TenantPageMixin, View):
    """A person's own name, shown wherever pages name them (for members: someone in no
    organization has no page to be named on)."""

    def render_form(self, request: HttpRequest, form: ProfileForm, status: int = 200) -> Any:
        return render(request, "accounts/profile.html", {"form": form}, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.render_form(request, ProfileForm(initial={"name": signed_in(self.tenant).name}))

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ProfileForm(request.POST)
        if form.is_valid():
            try:
                set_display_name(user=signed_in(self.tenant), name=form.cleaned_data["name"])
            except DomainError as error:
                add_domain_error(form, error)
            else:
                messages.success(request, "Saved your name.")
                return redirect("profile")
        return self.render_form(request, form, status=400)

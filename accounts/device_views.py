"""The till's shared-tablet pages: pairing a tablet, switching user on it by PIN, setting and
resetting PINs. The rules are accounts.services.devices; these pages parse, scope and answer.

- /settings/devices/ (owners and managers): the tills, a pairing link, unpairing, PIN resets.
- /till/pair/<token>/: an owner or manager, signed in on the tablet, confirms; the tablet gets
  its device cookie and opens the till.
- /till/switch/: only on a paired tablet (request.device, accounts.devices_middleware); anyone
  may open it, signed in or not, since the PIN is what says who they are.
- /accounts/pin/: a member's own PIN.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.contrib.auth import login, logout
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views import View

from accounts.device_forms import PIN_WIDGET_ATTRS, PairingForm, PinForm
from accounts.devices_middleware import (
    MAX_TOKEN_LENGTH,
    TILL_SESSION_KEY,
    request_device,
    set_device_cookie,
)
from accounts.emails import site_link
from accounts.errors import ConflictError, DomainError, ForbiddenError, NotFoundError
from accounts.models import Device, Membership, Role, User
from accounts.services.devices import (
    check_pin,
    create_pairing,
    device_attempt_allowed,
    devices_for,
    has_pin,
    pair,
    pairing_device,
    pairing_problem,
    pin_members_for,
    reset_pin,
    revoke_device,
    set_pin,
    switchable_members,
)
from accounts.tenancy import SESSION_LOCATION_KEY, SESSION_ORG_KEY, TenantPageMixin

MANAGERS = (Role.OWNER, Role.MANAGER)
# The PIN switch signs in without a password, so no password backend: the PIN was checked.
PIN_LOGIN_BACKEND = "django.contrib.auth.backends.ModelBackend"
WRONG_PIN, LOCKED, TOO_MANY = 400, 423, 429


class DeviceListView(TenantPageMixin, View):
    """The organization's tills (a manager sees those at their locations), a new pairing link,
    and the team's PINs to reset.

    A new link is in the answer to the POST that made it (no-store) and nowhere else, like an
    API key. Reloading that answer makes another waiting till, which expires unused; waiting
    tills whose link has expired are not listed."""

    required_roles = MANAGERS

    def _render(
        self,
        request: HttpRequest,
        form: PairingForm,
        *,
        new_device: Device | None = None,
        new_link: str = "",
        status: int = 200,
    ) -> HttpResponse:
        now = timezone.now()
        devices = devices_for(self.tenant).filter(
            models.Q(paired_at__isnull=False) | models.Q(pairing_expires_at__gt=now)
        )
        members = pin_members_for(self.tenant).select_related("user")
        context = {
            "devices": devices,
            "form": form,
            "new_device": new_device,
            "new_link": new_link,
            "members": members.order_by("user__name", "user__email"),
            "now": now,
            "settings_section": "devices",
        }
        response = render(request, "accounts/devices.html", context, status=status)
        add_never_cache_headers(response)
        return response

    def _form(self, data: dict | None = None) -> PairingForm:
        return PairingForm(data, locations=self.tenant.locations().order_by("name"))

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, self._form())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = self._form(request.POST)
        if not form.is_valid():
            return self._render(request, form, status=400)
        try:
            device, raw = create_pairing(
                tenant=self.tenant,
                location=form.cleaned_data["location"],
                name=form.cleaned_data["name"],
            )
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            return self._render(request, form, status=exc.status_code)
        link = site_link(reverse("device-pair", args=[raw]))
        return self._render(request, self._form(), new_device=device, new_link=link)


class DeviceRevokeView(TenantPageMixin, View):
    required_roles = MANAGERS

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        device = devices_for(self.tenant).filter(pk=pk).first()
        if device is None:
            raise Http404("No such till.")
        if revoke_device(tenant=self.tenant, device=device):
            messages.success(request, f"Unpaired {device.name} at {device.location.name}.")
        return redirect("devices")


class PinResetView(TenantPageMixin, View):
    required_roles = MANAGERS

    def post(self, request: HttpRequest, membership_id: int) -> HttpResponse:
        membership = (
            pin_members_for(self.tenant)
            .filter(pk=membership_id)
            .select_related("user", "organization")
            .first()
        )
        if membership is None:
            raise Http404("No such member.")
        try:
            reset_pin(tenant=self.tenant, membership=membership)
        except ForbiddenError as exc:
            raise PermissionDenied(exc.message) from exc
        messages.success(
            request, f"Reset {membership.user.display_name}'s PIN: they set a new one."
        )
        return redirect("devices")


class DevicePairView(TenantPageMixin, View):
    """Opened on the tablet by a signed-in owner or manager: confirm, and the tablet is a till.
    A link this person may not use is a 404, whether it exists or not."""

    @property
    def user(self) -> User:
        user = self.tenant.user
        assert user is not None  # a page's tenant is always a signed-in member
        return user

    def _device(self, request: HttpRequest, token: str) -> Device:
        if len(token) > MAX_TOKEN_LENGTH:
            raise Http404("No such pairing link.")
        try:
            return pairing_device(raw_token=token, user=self.user)
        except NotFoundError as exc:
            raise Http404(exc.message) from exc

    def _render(self, request: HttpRequest, device: Device, problem: str) -> HttpResponse:
        response = render(
            request,
            "accounts/device_pair.html",
            {"device": device, "problem": problem},
            status=409 if problem else 200,
        )
        add_never_cache_headers(response)
        return response

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        device = self._device(request, token)
        return self._render(request, device, pairing_problem(device, timezone.now()))

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        device = self._device(request, token)
        try:
            device, raw = pair(raw_token=token, user=self.user)
        except ConflictError as exc:
            return self._render(request, device, exc.message)
        # The owner or manager who paired it does not stay signed in on a counter tablet:
        # staff switch in by PIN from here on.
        logout(request)
        messages.success(request, f"This tablet is now {device.name} at {device.location.name}.")
        response = redirect("till-switch")
        set_device_cookie(response, raw)
        return response


class TillSwitchView(View):
    """Staff switch user on a paired till with their PIN. Whoever was signed in is replaced
    (login() starts a new session when the user changes, and rotates its key either way)."""

    def _device(self, request: HttpRequest) -> Device:
        device = request_device(request)
        if device is None:
            raise Http404("This is not a paired till.")
        return device

    def _render(
        self,
        request: HttpRequest,
        device: Device,
        *,
        chosen: Membership | None = None,
        error: str = "",
        status: int = 200,
    ) -> HttpResponse:
        context = {
            "device": device,
            "members": switchable_members(device),
            "chosen": chosen,
            "error": error,
            "pin_attrs": PIN_WIDGET_ATTRS,
        }
        response = render(request, "accounts/till_switch.html", context, status=status)
        add_never_cache_headers(response)
        return response

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, self._device(request))

    def post(self, request: HttpRequest) -> HttpResponse:
        device = self._device(request)
        member_id = request.POST.get("member", "")
        pin = request.POST.get("pin", "")[:20]
        membership = (
            switchable_members(device).filter(pk=int(member_id)).first()
            if member_id.isascii() and member_id.isdigit() and len(member_id) < 12
            else None
        )
        if membership is None:
            return self._render(request, device, error="Tap your name first.", status=WRONG_PIN)
        if not device_attempt_allowed(device):
            return self._render(
                request,
                device,
                chosen=membership,
                error="Too many PIN attempts on this till. Wait a few minutes.",
                status=TOO_MANY,
            )
        result = check_pin(membership=membership, pin=pin)
        if result.locked_until is not None:
            until = local_time(result.locked_until, device)
            return self._render(
                request,
                device,
                chosen=membership,
                error=f"Too many wrong PINs: locked until {until}. A manager can reset it.",
                status=LOCKED,
            )
        if not result.ok:
            tries = "1 try" if result.tries_left == 1 else f"{result.tries_left} tries"
            return self._render(
                request,
                device,
                chosen=membership,
                error=f"Wrong PIN, {tries} left.",
                status=WRONG_PIN,
            )
        login(request, membership.user, backend=PIN_LOGIN_BACKEND)
        request.session[SESSION_ORG_KEY] = device.organization_id
        request.session[SESSION_LOCATION_KEY] = device.location_id
        # A PIN session lives on this till alone: unpaired, it ends (DeviceMiddleware).
        request.session[TILL_SESSION_KEY] = device.pk
        return redirect("pos")


def local_time(moment: datetime, device: Device) -> str:
    return timezone.localtime(moment, device.location.tzinfo).strftime("%H:%M")


class PinSetView(TenantPageMixin, View):
    """A member's own till PIN. Changing an existing one asks for their password."""

    def _form(self, data: dict | None = None) -> PinForm:
        membership = self.tenant.membership
        assert membership is not None  # pages are for members
        return PinForm(data, user=self.request.user, asks_password=has_pin(membership))

    def _render(self, request: HttpRequest, form: PinForm, status: int = 200) -> HttpResponse:
        membership = self.tenant.membership
        context = {"form": form, "has_pin": membership is not None and has_pin(membership)}
        return render(request, "accounts/pin_set.html", context, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, self._form())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = self._form(request.POST)
        if not form.is_valid():
            return self._render(request, form, status=400)
        membership = self.tenant.membership
        assert membership is not None
        try:
            set_pin(membership=membership, pin=form.cleaned_data["pin"], actor=self.tenant.user)
        except DomainError as exc:
            form.add_error("pin", exc.message)
            return self._render(request, form, status=400)
        messages.success(request, "Your till PIN is set. Use it on a shared till to switch user.")
        return redirect("pin-set")

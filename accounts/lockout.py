"""Login lockout (django-axes): by email and client address together, so one cafe's tills, which
share an address, do not lock each other out, and one mistyped email does not lock a colleague.

And by address alone, for credential stuffing (many emails tried from one address):
LOGIN_ADDRESS_FAILURE_LIMIT failures from an address in the cool-off, whatever the emails, lock
that address. Axes cannot hold two limits (AXES_LOCKOUT_PARAMETERS may list several
combinations, but one AXES_FAILURE_LIMIT applies to the worst of them), so this limit is
counted here, from axes' own attempt rows, and refused through axes' lockout path.

Settings name these by dotted path (AUTHENTICATION_BACKENDS, AXES_*_CALLABLE).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.models import AccessAttempt
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Sum
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts.forms import EmailAuthenticationForm
from accounts.models import Organization, User


def cooloff_minutes() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)


def lockout_message() -> str:
    return (
        f"Too many failed log-ins for this email from this network. Try again in "
        f"{cooloff_minutes()} minutes (each new attempt restarts the wait), or ask your manager "
        "or owner to unlock it."
    )


def address_lockout_message() -> str:
    return (
        f"Too many failed log-ins from this network, for several emails. Try again in "
        f"{cooloff_minutes()} minutes (each new attempt restarts the wait)."
    )


# Set on a request refused by the address limit, so the lockout page says which limit it was.
ADDRESS_LOCKED_ATTR = "comeback_address_locked_out"


def address_failures(ip_address: str | None, *, now: datetime | None = None) -> int:
    """Failed log-ins from `ip_address` within the cool-off, across every email."""
    if not ip_address:
        return 0
    since = (now or timezone.now()) - settings.AXES_COOLOFF_TIME
    total = AccessAttempt.objects.filter(ip_address=ip_address, attempt_time__gte=since).aggregate(
        total=Sum("failures_since_start")
    )["total"]
    return int(total or 0)


class LockoutBackend(AxesStandaloneBackend):
    """Axes' check, for logins that come with a request (every login page and the admin).

    A call without one (the test client's `login()`, a shell) is not a login from a client
    address, and axes would raise on it; the next backend decides alone."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        if address_failures(client_ip(request)) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT:
            # Axes' own way out: the failed login is recorded (restarting the wait) and its
            # middleware answers with lockout_response.
            request.axes_locked_out = True  # type: ignore[attr-defined]
            setattr(request, ADDRESS_LOCKED_ATTR, True)
            raise AxesBackendPermissionDenied("Too many failed log-ins from this address.")
        return super().authenticate(request, username, password, **kwargs)


def username_of(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The email as the account stores it: the admin's form does not lower-case it, and
    `Owner@…` must count against the same lockout as `owner@…`."""
    value = (credentials or {}).get("username")
    if value is None:
        value = request.POST.get("username")
    return value.strip().lower() if isinstance(value, str) else None


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or behind a proxy we trust (TRUST_X_FORWARDED_FOR) the address it saw: the
    right-most X-Forwarded-For entry, the only one a client cannot write."""
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return request.META.get("REMOTE_ADDR")


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """The login page that was refused (the app's or the admin's), its error replaced by when
    to try again; 429 with Retry-After, not a bare text."""
    address = getattr(request, ADDRESS_LOCKED_ATTR, False)
    message = address_lockout_message() if address else lockout_message()
    context: dict[str, Any] | None = None
    template: Any = "registration/login.html"
    if isinstance(original_response, TemplateResponse) and original_response.context_data:
        context = dict(original_response.context_data)
        template = original_response.template_name
    form = (context or {}).get("form")
    if isinstance(form, Form) and form.is_bound:
        # The form already said "enter a correct email and password", which the password may be.
        form.errors.pop(NON_FIELD_ERRORS, None)
        form.add_error(None, ValidationError(message, code="locked_out"))
    else:
        form = EmailAuthenticationForm(request, initial={"username": username_of(request, None)})
        context = {"form": form, "lockout_message": message, "next": ""}
    response = TemplateResponse(request, template, context, status=429)
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response.render()


def locked_out_emails(*, organization: Organization, now: datetime | None = None) -> list[str]:
    """The organization's members locked out now (from any address), for its owners' page."""
    since = (now or timezone.now()) - settings.AXES_COOLOFF_TIME
    members = User.objects.filter(memberships__organization=organization).values("email")
    locked = (
        AccessAttempt.objects.filter(username__in=members, attempt_time__gte=since)
        .values("username", "ip_address")
        .annotate(failures=Sum("failures_since_start"))
        .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
        .values_list("username", flat=True)
    )
    return sorted(set(locked))

"""Password reset and change: Django's own views, with links from SITE_URL and a rate limit.

The reset form answers the same page whether or not the email has an account. Requests are
counted per client address (PASSWORD_RESET_ADDRESS_LIMIT an hour: over it, a 429 page that says
nothing about any account) and per email (PASSWORD_RESET_EMAIL_LIMIT an hour: over it, the same
"check your inbox" page and no further email, so a stranger cannot flood someone's inbox nor
learn anything from the answer). The counters live in the shared cache, like the API's
throttles. The email leaves after the answer is written, so an account's answer takes no
longer than an unknown email's.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from accounts.emails import send_password_reset_email
from accounts.lockout import client_ip
from accounts.ratelimit import count_or_none
from accounts.validators import validate_strict_email

log = logging.getLogger(__name__)

PASSWORD_RESET_ADDRESS_LIMIT = 20  # a cafe's tills share one address
PASSWORD_RESET_EMAIL_LIMIT = 3
WINDOW_SECONDS = 3600


def _count(key: str) -> int:
    """One more request in this hour's window; with the cache down, 0: the request goes
    through (a limit must not take the page down with it)."""
    return count_or_none(key, WINDOW_SECONDS) or 0


class BadInputIs400:
    """Django's views answer a refused form with 200; ours answer 400, like every form here."""

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)  # type: ignore[misc]
        response.status_code = 400
        return response


class ResetForm(PasswordResetForm):
    """Django's form, our email rule and our message; the messages wait in `outbox` for the
    answer to be sent (SendAfterResponse)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].validators.append(validate_strict_email)
        self.fields["email"].widget.attrs["autofocus"] = True
        self.outbox: list[tuple[dict[str, Any], str]] = []

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        self.outbox.append((context, to_email))


class SendAfterResponse(HttpResponseRedirect):
    """The redirect to "check your email", which sends the reset email once the server has
    written it (close() is called by the WSGI server at the end of the request). Sent inside
    the request, the mail server's round trip would make an account's answer slower than an
    unknown email's, and so say which emails have accounts."""

    def __init__(self, url: str, outbox: list[tuple[dict[str, Any], str]]) -> None:
        super().__init__(url)
        self.outbox = outbox

    def close(self) -> None:
        super().close()
        outbox, self.outbox = self.outbox, []
        for context, to_email in outbox:
            try:
                send_password_reset_email(context=context, to_email=to_email)
            except Exception:  # the answer is gone: all that is left is to say so in the log
                log.exception("Could not send a password reset email.")


class RateLimitedPasswordResetView(BadInputIs400, auth_views.PasswordResetView):
    form_class = ResetForm
    template_name = "registration/password_reset_form.html"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        address = client_ip(request) or "unknown"
        if _count(f"password-reset:address:{address}") > PASSWORD_RESET_ADDRESS_LIMIT:
            response = render(
                request,
                "registration/password_reset_form.html",
                {"form": ResetForm(), "too_many": True},
                status=429,
            )
            response["Retry-After"] = str(WINDOW_SECONDS)
            return response
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        email = form.cleaned_data["email"].strip().lower()
        digest = hashlib.sha256(email.encode()).hexdigest()
        if _count(f"password-reset:email:{digest}") > PASSWORD_RESET_EMAIL_LIMIT:
            return HttpResponseRedirect(self.get_success_url())  # the same answer, no email
        form.cleaned_data["email"] = email  # accounts store emails lower-case
        redirect = super().form_valid(form)  # fills form.outbox, sends nothing
        assert isinstance(form, ResetForm)
        return SendAfterResponse(redirect["Location"], form.outbox)


class PasswordResetConfirmView(BadInputIs400, auth_views.PasswordResetConfirmView):
    pass


class PasswordChangeView(BadInputIs400, auth_views.PasswordChangeView):
    pass

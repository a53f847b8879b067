"""The accounts' own emails, plain text, with links built from SITE_URL (never from the
request's Host header, which a client writes)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import Invitation


def site_link(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def invitation_link(raw_token: str) -> str:
    return site_link(reverse("invitation-accept", kwargs={"token": raw_token}))


def send_invitation_email(*, invitation: Invitation, raw_token: str) -> None:
    inviter = invitation.invited_by
    context = {
        "organization": invitation.organization.name,
        "inviter": inviter.display_name if inviter else "",
        "role": invitation.get_role_display().lower(),
        "link": invitation_link(raw_token),
        "expires_at": invitation.expires_at,
    }
    send_mail(
        subject=f"Join {invitation.organization.name} on Comeback",
        message=render_to_string("accounts/invitation_email.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )


def send_password_reset_email(*, context: dict[str, Any], to_email: str) -> None:
    """What Django's PasswordResetForm hands over (uid, token, user), as our message."""
    link = site_link(
        reverse(
            "password_reset_confirm", kwargs={"uidb64": context["uid"], "token": context["token"]}
        )
    )
    send_mail(
        subject="Reset your Comeback password",
        message=render_to_string(
            "registration/password_reset_email.txt", {**context, "link": link}
        ),
        from_email=None,
        recipient_list=[to_email],
    )

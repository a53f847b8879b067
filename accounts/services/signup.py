"""Self-serve sign-up: a new organization, its first location and its owner, in one go.

The owner's account is created first, in the same transaction as the organization: two
sign-ups racing with one email meet at the unique constraint on `User.email`, the second waits
for the first and gets the "already registered" error, and none of its organization is left
behind. A signed-in user signing up again adds an organization to their account (that is how
one person comes to own several), without a second account.

On a private install (`SIGNUP_OPEN=false`) sign-up makes the first organization only; the
check is serialized on PostgreSQL with an advisory lock so two first sign-ups cannot both pass.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from accounts.errors import ForbiddenError, InvalidFields, InvalidInput
from accounts.models import Organization, TeamAction, User
from accounts.ratelimit import count_or_none
from accounts.services import create_organization, record_team_event
from accounts.services.org_settings import invalid_fields
from accounts.validators import email_problem, name_problem

EMAIL_TAKEN = (
    "An account with this email exists already: log in, or reset your password if you forgot it."
)
# pg_advisory_xact_lock key for "is this the first organization?" (any fixed number).
FIRST_ORGANIZATION_LOCK = 7_311_001


class SignupClosed(ForbiddenError):
    default_code = "signup_closed"


def signup_is_open() -> bool:
    """Open, or closed but no organization exists yet (a private install's first run)."""
    return settings.SIGNUP_OPEN or not Organization.objects.exists()


@dataclass(frozen=True)
class SignupInput:
    organization_name: str
    country: str
    time_zone: str
    location_name: str
    owner_name: str = ""
    email: str = ""
    password: str = ""


def _check_text(value: str, *, field: str, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise InvalidInput("This field is required.", field=field, code="required")
    problem = name_problem(value)
    if problem:
        raise InvalidInput(f"Must not hold {problem}.", field=field, code="invalid_characters")
    return value


def _create_owner(data: SignupInput) -> User:
    email = data.email.strip().lower()
    problem = email_problem(email)
    if problem is not None:
        message = f"Enter a valid email address: {problem}." if problem else ""
        raise InvalidInput(message or "Enter a valid email address.", field="email")
    name = _check_text(data.owner_name, field="owner_name")
    candidate = User(email=email, name=name)
    try:
        validate_password(data.password, user=candidate)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field="password", code="weak_password") from exc
    try:
        # A savepoint: the constraint's refusal leaves the outer transaction usable to raise.
        with transaction.atomic():
            return User.objects.create_user(email, data.password, name=name)
    except IntegrityError as exc:
        raise InvalidInput(EMAIL_TAKEN, field="email", code="email_taken") from exc


@transaction.atomic
def sign_up(*, data: SignupInput, user: User | None = None) -> tuple[User, Organization]:
    """Create the organization with `data`'s first location and make its owner `user` (signed
    in already) or a new account from `data`'s name, email and password. Bad input is a
    DomainError naming the field (`organization_name`, `country`, `time_zone`,
    `location_name`, `owner_name`, `email`, `password`) and leaves nothing behind."""
    if not settings.SIGNUP_OPEN:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FIRST_ORGANIZATION_LOCK])
        if Organization.objects.exists():
            raise SignupClosed("Sign-up is closed on this installation.")
    organization_name = _check_text(data.organization_name, field="organization_name")
    location_name = _check_text(data.location_name, field="location_name")
    owner = user if user is not None else _create_owner(data)
    try:
        organization = create_organization(
            name=organization_name,
            location_names=[location_name],
            country=data.country,
            time_zone=data.time_zone,
            owner=owner,
        )
    except ValidationError as exc:
        # The organization's `name` is the form's `organization_name`.
        errors = [
            {**item, "field": "organization_name" if item["field"] == "name" else item["field"]}
            for item in invalid_fields(exc).errors
        ]
        raise InvalidFields(errors) from exc
    record_team_event(
        organization=organization,
        actor=owner,
        action=TeamAction.SIGNED_UP,
        subject=owner,
        organization_name=organization.name,
        location=location_name,
    )
    return owner, organization


# --- rate limit: sign-up posts per client address -----------------------------------------


def signup_retry_after(address: str | None, *, now: float | None = None) -> int | None:
    """Count one sign-up post from `address`; None if it may go ahead, else the seconds until
    it may (accounts.ratelimit: the cache being down lets posts through)."""
    limit, window = settings.SIGNUP_RATE_LIMIT, settings.SIGNUP_RATE_WINDOW_SECONDS
    if not address or limit <= 0:
        return None
    now = time.time() if now is None else now
    start = int(now // window) * window
    key = f"throttle:signup:{address}:{start}"
    count = count_or_none(key, window)
    if count is None or count <= limit:
        return None
    return max(1, math.ceil(start + window - now))

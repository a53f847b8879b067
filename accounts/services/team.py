"""The team: invitations, roles, location limits, deactivation. Every change here writes its
line of the team history (record_team_event) in its own transaction.

Only owners manage the team: every change here first locks the organization's active owner
memberships (select_for_update, in primary-key order) and checks the actor is among them. So
team changes in one organization run one at a time: two owners demoting each other at once
leave one of them an owner (the second sees the first's result, and the last active owner can
be neither demoted nor deactivated), and two invitations of one email leave one link alive.
Joining through a link is not a team change by an owner; it is claimed by a compare-and-swap
on the invitation instead.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.errors import ConflictError, ForbiddenError, InvalidInput, NotFoundError
from accounts.models import (
    INVITATION_DAYS,
    Invitation,
    Location,
    Membership,
    Organization,
    Role,
    TeamAction,
    User,
    hash_token,
)
from accounts.services import record_team_event
from accounts.validators import email_problem, name_problem


class InvitationUnavailable(NotFoundError):
    """Expired, revoked, used or unknown: one answer, which does not say which."""

    default_code = "invitation_unavailable"


@dataclass(frozen=True)
class InviteResult:
    invitation: Invitation
    raw_token: str
    # "created", or "replaced" when a pending invitation for the same email was revoked for it.
    outcome: str


def _require_owner(organization: Organization, actor: User) -> list[Membership]:
    """The organization's active owners, locked in primary-key order (the one lock order: two
    team changes cannot deadlock, and the second re-reads what the first committed); a
    ForbiddenError unless `actor` is one of them."""
    owners = list(
        Membership.objects.select_for_update()
        .filter(organization=organization, role=Role.OWNER, is_active=True)
        .order_by("pk")
    )
    if all(owner.user_id != actor.pk for owner in owners):
        raise ForbiddenError("Only owners manage the team.", field="role", code="not_owner")
    return owners


def _clean_locations(organization: Organization, locations: Iterable[Location]) -> list[Location]:
    chosen = list(locations)
    if any(location.organization_id != organization.pk for location in chosen):
        raise NotFoundError("No such location here.", field="locations")
    return chosen


def normalize_email(raw: str) -> str:
    """An invited email as accounts store it (lower-case), or an InvalidInput naming `email`.
    (The rule is accounts.validators', the one cxcore.text_rules applies to customers.)"""
    value = raw.strip()
    problem = email_problem(value)
    if problem is None:
        return value.lower()
    reason = f": {problem}" if problem else ""
    raise InvalidInput(
        f"That is not an email address{reason}.", field="email", code="invalid_email"
    )


def check_name(text: str, *, field: str) -> None:
    problem = name_problem(text)
    if problem:
        raise InvalidInput(f"Must not hold {problem}.", field=field, code="invalid_characters")


def _clean_role(role: str) -> str:
    if role not in Role.values:
        raise InvalidInput(f"{role[:20]!r} is not a role.", field="role", code="invalid_role")
    return role


def _location_names(locations: Iterable[Location]) -> list[str]:
    return sorted(location.name for location in locations)


def _new_token() -> tuple[str, str]:
    raw = secrets.token_urlsafe(32)
    return raw, hash_token(raw)


def _send_invitation_after_commit(invitation: Invitation, raw_token: str) -> None:
    from accounts.emails import send_invitation_email

    # robust: a mail server that is down must not turn a saved invitation into an error page;
    # the owner sees it pending and can resend.
    transaction.on_commit(
        lambda: send_invitation_email(invitation=invitation, raw_token=raw_token), robust=True
    )


@transaction.atomic
def invite_member(
    *,
    organization: Organization,
    actor: User,
    email: str,
    role: str,
    locations: Iterable[Location] = (),
    now: datetime | None = None,
) -> InviteResult:
    """Invite `email` with a role and location limits; the link is mailed after commit.

    An active member with that email is refused (naming `email`); a pending invitation for it
    is revoked and replaced by this one (outcome "replaced"), so one link is live at a time."""
    now = now or timezone.now()
    _require_owner(organization, actor)
    email = normalize_email(email)
    role = _clean_role(role)
    chosen = _clean_locations(organization, locations)
    if Membership.objects.filter(
        organization=organization, user__email=email, is_active=True
    ).exists():
        raise InvalidInput(
            f"{email} is already a member of the team.", field="email", code="already_member"
        )
    replaced = Invitation.objects.for_org(organization).filter(
        email=email, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
    )
    outcome = "replaced" if replaced.update(revoked_at=now) else "created"
    raw, token_hash = _new_token()
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        role=role,
        token_hash=token_hash,
        invited_by=actor,
        created_at=now,
        sent_at=now,
        expires_at=now + timedelta(days=INVITATION_DAYS),
    )
    invitation.locations.set(chosen)
    record_team_event(
        organization=organization,
        actor=actor,
        action=TeamAction.INVITED,
        subject_label=email,
        role=role,
        locations=_location_names(chosen),
        replaced=outcome == "replaced",
    )
    _send_invitation_after_commit(invitation, raw)
    return InviteResult(invitation=invitation, raw_token=raw, outcome=outcome)


def _pending(organization: Organization, invitation: Invitation) -> QuerySet[Invitation]:
    return Invitation.objects.for_org(organization).filter(
        pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
    )


@transaction.atomic
def resend_invitation(*, invitation: Invitation, actor: User, now: datetime | None = None) -> str:
    """A new link (the old one is dead at once) and a new expiry; returns the raw token."""
    now = now or timezone.now()
    organization = invitation.organization
    _require_owner(organization, actor)
    raw, token_hash = _new_token()
    expires_at = now + timedelta(days=INVITATION_DAYS)
    # Compare-and-swap: an invitation accepted or revoked meanwhile is not revived.
    changed = _pending(organization, invitation).update(
        token_hash=token_hash, sent_at=now, expires_at=expires_at
    )
    if not changed:
        raise ConflictError(
            "This invitation was already accepted or revoked.",
            field="invitation",
            code="invitation_closed",
        )
    invitation.token_hash, invitation.sent_at, invitation.expires_at = (
        token_hash,
        now,
        expires_at,
    )
    record_team_event(
        organization=organization,
        actor=actor,
        action=TeamAction.INVITE_RESENT,
        subject_label=invitation.email,
    )
    _send_invitation_after_commit(invitation, raw)
    return raw


@transaction.atomic
def revoke_invitation(*, invitation: Invitation, actor: User, now: datetime | None = None) -> bool:
    """Revoke once; True if this call revoked it (safe to repeat)."""
    now = now or timezone.now()
    organization = invitation.organization
    _require_owner(organization, actor)
    if not _pending(organization, invitation).update(revoked_at=now):
        return False
    invitation.revoked_at = now
    record_team_event(
        organization=organization,
        actor=actor,
        action=TeamAction.INVITE_REVOKED,
        subject_label=invitation.email,
    )
    return True


def pending_invitation(raw_token: str, *, now: datetime | None = None) -> Invitation | None:
    """The invitation this link opens, if it still opens one."""
    now = now or timezone.now()
    if not raw_token or len(raw_token) > 100:
        return None
    return (
        Invitation.objects.filter(
            token_hash=hash_token(raw_token),
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=now,
        )
        .select_related("organization")
        .first()
    )


def check_new_password(*, email: str, name: str, password: str) -> None:
    """Django's password validators, against the person the account will be; an InvalidInput
    naming `password` (every reason, in one message) if it is refused."""
    try:
        password_validation.validate_password(password, User(email=email, name=name))
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field="password", code="weak_password") from exc


def accept_invitation(
    *,
    raw_token: str,
    user: User | None = None,
    name: str = "",
    password: str = "",
    now: datetime | None = None,
) -> Membership:
    """Join through an invitation link: as `user` (signed in, with the invited email), or as a
    new account made from `name` and `password`. Single use under concurrency: the invitation
    is claimed by a compare-and-swap on its still-pending row, so of two accepts one joins and
    the other gets InvitationUnavailable. A deactivated member who is invited again is
    reactivated with the invitation's role and limits."""
    now = now or timezone.now()
    invitation = pending_invitation(raw_token, now=now)
    if invitation is None:
        raise InvitationUnavailable("This invitation link no longer works.")
    if user is not None:
        if user.email != invitation.email:
            raise InvalidInput(
                f"This invitation is for {invitation.email}; log out to accept it.",
                field="email",
                code="wrong_account",
            )
    else:
        name = name.strip()
        if not name:
            raise InvalidInput("Say your name.", field="name", code="required")
        check_name(name, field="name")
        if len(name) > 150:
            raise InvalidInput("At most 150 characters.", field="name", code="too_long")
        if account_exists(invitation.email):
            raise InvalidInput(
                f"{invitation.email} already has an account: log in to accept.",
                field="email",
                code="log_in_first",
            )
        check_new_password(email=invitation.email, name=name, password=password)
    try:
        with transaction.atomic():
            claimed = Invitation.objects.filter(
                pk=invitation.pk,
                accepted_at__isnull=True,
                revoked_at__isnull=True,
                expires_at__gt=now,
            ).update(accepted_at=now)
            if not claimed:
                raise InvitationUnavailable("This invitation link no longer works.")
            if user is None:
                user = User.objects.create_user(
                    email=invitation.email, password=password, name=name
                )
            Invitation.objects.filter(pk=invitation.pk).update(accepted_by=user)
            return _join(invitation=invitation, user=user, now=now)
    except IntegrityError as exc:  # the same email signed up a moment ago
        raise InvalidInput(
            f"{invitation.email} already has an account: log in to accept.",
            field="email",
            code="log_in_first",
        ) from exc


def _join(*, invitation: Invitation, user: User, now: datetime) -> Membership:
    organization = invitation.organization
    locations = list(invitation.locations.all())
    existing = Membership.objects.filter(organization=organization, user=user).first()
    if existing is not None and existing.is_active:
        # Roles change on the member's page, under the owners' lock that keeps the last owner.
        raise InvitationUnavailable(f"You are a member of {organization.name} already.")
    membership, _ = Membership.objects.update_or_create(
        organization=organization,
        user=user,
        defaults={"role": invitation.role, "is_active": True, "deactivated_at": None},
    )
    membership.locations.set(locations)
    record_team_event(
        organization=organization,
        actor=user,
        action=TeamAction.JOINED,
        subject=user,
        role=invitation.role,
        locations=_location_names(locations),
        invited_by=invitation.invited_by.email if invitation.invited_by else "",
        reactivated=existing is not None,
    )
    return membership


def _refuse_last_owner(owners: list[Membership], membership: Membership, field: str) -> None:
    if [owner.pk for owner in owners] == [membership.pk]:
        raise ConflictError(
            "The organization needs an owner: make someone else an owner first.",
            field=field,
            code="last_owner",
        )


def _fresh(membership: Membership) -> Membership:
    """The membership re-read under a row lock, after the owners' locks."""
    return Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)


@transaction.atomic
def change_role(
    *, membership: Membership, actor: User, role: str, now: datetime | None = None
) -> bool:
    """Give a member another role; True if it changed. The last active owner keeps theirs."""
    organization = membership.organization
    owners = _require_owner(organization, actor)
    role = _clean_role(role)
    if role != Role.OWNER:
        _refuse_last_owner(owners, membership, "role")
    current = _fresh(membership)
    if current.role == role:
        return False
    Membership.objects.filter(pk=current.pk).update(role=role)
    record_team_event(
        organization=organization,
        actor=actor,
        action=TeamAction.ROLE_CHANGED,
        subject=current.user,
        before=current.role,
        after=role,
    )
    membership.role = role
    return True


@transaction.atomic
def change_locations(*, membership: Membership, actor: User, locations: Iterable[Location]) -> bool:
    """Limit a member to these locations (none: every location); True if it changed."""
    organization = membership.organization
    _require_owner(organization, actor)
    chosen = _clean_locations(organization, locations)
    current = _fresh(membership)
    before = _location_names(current.locations.all())
    after = _location_names(chosen)
    if before == after:
        return False
    current.locations.set(chosen)
    record_team_event(
        organization=organization,
        actor=actor,
        action=TeamAction.LOCATIONS_CHANGED,
        subject=current.user,
        before=before,
        after=after,
    )
    return True


@transaction.atomic
def update_member(
    *, membership: Membership, actor: User, role: str, locations: Iterable[Location]
) -> bool:
    """The member page's save: role and location limits together, or neither; True if either
    changed. The limits go first: an owner who steps down on this page is no longer an owner
    for the second change."""
    limits_changed = change_locations(membership=membership, actor=actor, locations=locations)
    role_changed = change_role(membership=membership, actor=actor, role=role)
    return role_changed or limits_changed


@transaction.atomic
def deactivate_member(*, membership: Membership, actor: User, now: datetime | None = None) -> bool:
    """End a member's access: from their next request nothing of the organization opens
    (accounts.tenancy.memberships_for reads active rows only); with no other organization
    their sessions are deleted too. The last active owner cannot be deactivated."""
    now = now or timezone.now()
    organization = membership.organization
    owners = _require_owner(organization, actor)
    _refuse_last_owner(owners, membership, "member")
    current = _fresh(membership)
    if not current.is_active:
        return False
    Membership.objects.filter(pk=current.pk).update(is_active=False, deactivated_at=now)
    record_team_event(
        organization=organization,
        actor=actor,
        action=TeamAction.DEACTIVATED,
        subject=current.user,
        role=current.role,
    )
    user_id = current.user_id
    if not Membership.objects.filter(user_id=user_id, is_active=True).exists():
        transaction.on_commit(lambda: end_sessions(user_id=user_id, now=now))
    membership.is_active, membership.deactivated_at = False, now
    return True


@transaction.atomic
def reactivate_member(*, membership: Membership, actor: User, now: datetime | None = None) -> bool:
    """Give a deactivated member their access back, with the role and limits they had."""
    organization = membership.organization
    _require_owner(organization, actor)
    current = _fresh(membership)
    if current.is_active:
        return False
    Membership.objects.filter(pk=current.pk).update(is_active=True, deactivated_at=None)
    # An invitation waiting for them would change their role later, past the owners' lock.
    Invitation.objects.filter(
        organization=organization,
        email=current.user.email,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
    ).update(revoked_at=now or timezone.now())
    record_team_event(
        organization=organization,
        actor=actor,
        action=TeamAction.REACTIVATED,
        subject=current.user,
        role=current.role,
    )
    membership.is_active, membership.deactivated_at = True, None
    return True


def end_sessions(*, user_id: int, now: datetime | None = None) -> int:
    """Delete the user's unexpired database sessions; returns how many.

    Sessions do not index their user, so this decodes the unexpired ones (a few thousand rows
    at most: sessions expire SESSION_IDLE_MINUTES after their last request). Access does not
    depend on it: a deactivated membership opens nothing from the next request anyway. Other
    session engines (cache, signed cookies) are left to that rule."""
    if settings.SESSION_ENGINE != "django.contrib.sessions.backends.db":
        return 0
    now = now or timezone.now()
    wanted = str(user_id)
    doomed = []
    for session in Session.objects.filter(expire_date__gt=now).iterator(chunk_size=500):
        if session.get_decoded().get("_auth_user_id") == wanted:
            doomed.append(session.pk)
    Session.objects.filter(pk__in=doomed).delete()
    return len(doomed)


def member_for(organization: Organization, pk: int) -> Membership | None:
    """The organization's member `pk` (active or not), if it is one of theirs."""
    return (
        Membership.objects.filter(organization=organization, pk=pk)
        .select_related("user", "organization")
        .first()
    )


def account_exists(email: str) -> bool:
    """Whether an invited email already has an account (it then logs in to accept)."""
    return User.objects.filter(email=email).exists()

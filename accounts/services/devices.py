"""Shared till tablets: pairing a device to a location, and the personal PINs staff switch
user with on it, the way POS terminals work.

- A pairing link (`create_pairing`) is valid PAIRING_MINUTES and used once; opening it on the
  tablet while signed in as an owner or manager (`pair`) gives the tablet a long-lived device
  token, of which only the hash is kept. Revoking the device (`revoke_device`) ends it.
- A PIN is 4–6 digits, hashed like a password. PIN_MAX_FAILURES wrong tries in a row lock it
  for PIN_LOCK_MINUTES (`check_pin`); while locked even the right PIN fails. A manager's
  `reset_pin` clears the PIN and the lock. Each device also has a rate limit of its own
  (`device_attempt_allowed`), so one tablet cannot cycle through everyone's five tries.

Every change is a line of the team history (`record_team_event`) in the same transaction.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from django.contrib.auth.hashers import check_password, make_password
from django.db import models, transaction
from django.utils import timezone

from accounts.errors import ConflictError, ForbiddenError, InvalidInput, NotFoundError
from accounts.models import Device, Location, Membership, Role, TeamAction, User, hash_token
from accounts.ratelimit import count_or_none
from accounts.services import record_team_event
from accounts.tenancy import Tenant
from accounts.validators import name_problem

PAIRING_MINUTES = 15
PIN_MAX_FAILURES = 5
PIN_LOCK_MINUTES = 15
# last_seen_at is a write: at most one a minute per device, not one per till request.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
# Per device, beside each member's own lock: PIN attempts in a fixed window.
DEVICE_ATTEMPTS_PER_WINDOW = 20
DEVICE_ATTEMPT_WINDOW_SECONDS = 5 * 60
PIN_MIN_LENGTH, PIN_MAX_LENGTH = 4, 6


# --- pairing ------------------------------------------------------------------------------


def _may_manage_location(membership: Membership | None, location: Location) -> bool:
    """Owners manage every till; managers the tills at locations they may use."""
    if membership is None or not membership.is_active:
        return False
    if membership.organization_id != location.organization_id:
        return False
    if membership.role == Role.OWNER:
        return True
    if membership.role != Role.MANAGER:
        return False
    limited = set(membership.locations.values_list("pk", flat=True))
    return not limited or location.pk in limited


def devices_for(tenant: Tenant) -> models.QuerySet[Device]:
    """The devices a tenant may see and manage: its organization's, within its locations."""
    qs = Device.objects.for_tenant(tenant).select_related("location")
    if tenant.location_ids is not None:
        qs = qs.filter(location_id__in=tenant.location_ids)
    return qs


def pin_members_for(tenant: Tenant) -> models.QuerySet[Membership]:
    """The active members whose PINs a tenant may reset: a manager limited to locations, those
    who work at one of them (or everywhere); an owner, everyone."""
    qs = tenant.memberships().filter(is_active=True)
    if tenant.location_ids is not None:
        qs = qs.filter(
            models.Q(locations=None) | models.Q(locations__in=tenant.location_ids)
        ).distinct()
    return qs


def create_pairing(
    *, tenant: Tenant, location: Location, name: str, now: datetime | None = None
) -> tuple[Device, str]:
    """A new device waiting to be paired, and the raw pairing token for its link (shown once,
    valid PAIRING_MINUTES)."""
    now = now or timezone.now()
    if not tenant.is_manager_or_owner:
        raise ForbiddenError("Only owners and managers pair tills.", field="location")
    if not location.is_active or not tenant.can_use_location(location):
        raise NotFoundError("No such location here.", field="location")
    name = name.strip()
    if not name:
        raise InvalidInput("Give the till a name, e.g. 'Front counter'.", field="name")
    if len(name) > 100:
        raise InvalidInput("At most 100 characters.", field="name", code="max_length")
    problem = name_problem(name)
    if problem:
        raise InvalidInput(f"Must not hold {problem}.", field="name", code="invalid_characters")
    raw = secrets.token_urlsafe(32)
    device = Device.objects.create(
        organization=tenant.organization,
        location=location,
        name=name,
        pairing_token_hash=hash_token(raw),
        pairing_expires_at=now + timedelta(minutes=PAIRING_MINUTES),
        created_by=tenant.user,
        created_at=now,
    )
    return device, raw


def pairing_device(*, raw_token: str, user: User) -> Device:
    """The device a pairing link names, if `user` may pair it (an active owner of its
    organization, or a manager of its location); else NotFoundError, whether the link exists
    or not, so a link tells nobody else anything."""
    device = (
        Device.objects.filter(pairing_token_hash=hash_token(raw_token))
        .select_related("location", "organization")
        .first()
    )
    if device is None:
        raise NotFoundError("No such pairing link.")
    membership = Membership.objects.filter(
        user=user, organization_id=device.organization_id, is_active=True
    ).first()
    if not _may_manage_location(membership, device.location):
        raise NotFoundError("No such pairing link.")
    return device


def pairing_problem(device: Device, now: datetime) -> str:
    """Why this link can no longer pair ("" if it can)."""
    if device.revoked_at is not None:
        return "This till was unpaired. Create a new pairing link on the Tills page."
    if device.paired_at is not None:
        return "This link was used already. Create a new pairing link on the Tills page."
    if not device.location.is_active:
        return "This till's location is archived."
    if device.pairing_expires_at is None or device.pairing_expires_at <= now:
        return "This link has expired. Create a new pairing link on the Tills page."
    return ""


def pair(*, raw_token: str, user: User, now: datetime | None = None) -> tuple[Device, str]:
    """Pair the device the link names; returns it with the raw device token (for the cookie).

    Single use under concurrency: the row changes only if it is still unpaired and unexpired
    (compare-and-swap), so of two tablets opening one link at once exactly one gets a token.
    """
    now = now or timezone.now()
    device = pairing_device(raw_token=raw_token, user=user)
    problem = pairing_problem(device, now)
    if problem:
        raise ConflictError(problem, code="pairing_unavailable")
    raw_device_token = secrets.token_urlsafe(32)
    with transaction.atomic():
        changed = Device.objects.filter(
            pk=device.pk,
            paired_at__isnull=True,
            revoked_at__isnull=True,
            pairing_expires_at__gt=now,
        ).update(token_hash=hash_token(raw_device_token), paired_at=now, last_seen_at=now)
        if not changed:
            raise ConflictError(
                "This link was used already. Create a new pairing link on the Tills page.",
                code="pairing_unavailable",
            )
        record_team_event(
            organization=device.organization,
            actor=user,
            action=TeamAction.DEVICE_PAIRED,
            subject_label=f"{device.name} at {device.location.name}",
            device=device.pk,
            location=device.location.pk,
        )
    device.paired_at = device.last_seen_at = now
    return device, raw_device_token


def device_for_token(raw: str, *, now: datetime | None = None) -> Device | None:
    """The active device (paired, not revoked, at an active location) holding this token.

    One indexed lookup by the token's hash; last_seen_at is written at most once a minute."""
    if not raw:
        return None
    device = (
        Device.objects.filter(
            token_hash=hash_token(raw),
            revoked_at__isnull=True,
            paired_at__isnull=False,
            location__is_active=True,
        )
        .select_related("location", "organization")
        .first()
    )
    if device is None:
        return None
    now = now or timezone.now()
    if device.last_seen_at is None or now - device.last_seen_at >= LAST_SEEN_RESOLUTION:
        Device.objects.filter(pk=device.pk).update(last_seen_at=now)
        device.last_seen_at = now
    return device


def revoke_device(*, tenant: Tenant, device: Device, now: datetime | None = None) -> bool:
    """Unpair a device: its cookie stops working at its next request. True if this call did it
    (compare-and-swap, safe to repeat)."""
    now = now or timezone.now()
    if not tenant.is_manager_or_owner:
        raise ForbiddenError("Only owners and managers unpair tills.")
    if not devices_for(tenant).filter(pk=device.pk).exists():
        raise NotFoundError("No such till.")
    with transaction.atomic():
        changed = Device.objects.filter(pk=device.pk, revoked_at__isnull=True).update(
            revoked_at=now
        )
        if changed:
            record_team_event(
                organization=tenant.organization,
                actor=tenant.user,
                action=TeamAction.DEVICE_REVOKED,
                subject_label=f"{device.name} at {device.location.name}",
                device=device.pk,
                location=device.location_id,
            )
    if changed:
        device.revoked_at = now
    return bool(changed)


# --- PINs ---------------------------------------------------------------------------------


def pin_problem(pin: str) -> str:
    """Why `pin` cannot be a PIN ("" if it can): 4–6 ASCII digits, not one digit repeated
    (0000) and not a straight run up or down (1234, 9876, 123456), the guesses tried first."""
    if not (PIN_MIN_LENGTH <= len(pin) <= PIN_MAX_LENGTH) or not all(
        c in "0123456789" for c in pin
    ):
        return f"A PIN is {PIN_MIN_LENGTH} to {PIN_MAX_LENGTH} digits."
    steps = {int(b) - int(a) for a, b in pairwise(pin)}
    if steps == {0}:
        return "Too easy to guess: not one digit repeated."
    if steps in ({1}, {-1}):
        return "Too easy to guess: not a run of digits like 1234."
    return ""


def has_pin(membership: Membership) -> bool:
    return bool(membership.pin_hash)


def set_pin(*, membership: Membership, pin: str, actor: User | None = None) -> None:
    """Set or change a member's own PIN; clears any failures and lock."""
    problem = pin_problem(pin)
    if problem:
        raise InvalidInput(problem, field="pin", code="invalid_pin")
    pin_hash = make_password(pin)
    with transaction.atomic():
        Membership.objects.filter(pk=membership.pk).update(
            pin_hash=pin_hash, pin_failures=0, pin_locked_until=None
        )
        record_team_event(
            organization=membership.organization,
            actor=actor or membership.user,
            action=TeamAction.PIN_SET,
            subject=membership.user,
        )
    membership.pin_hash, membership.pin_failures, membership.pin_locked_until = pin_hash, 0, None


def reset_pin(*, tenant: Tenant, membership: Membership) -> None:
    """A manager or owner clears a member's PIN and lock (the member sets a new one). Managers
    may not reset an owner's PIN."""
    if not tenant.is_manager_or_owner:
        raise ForbiddenError("Only owners and managers reset PINs.")
    if not pin_members_for(tenant).filter(pk=membership.pk).exists():
        raise NotFoundError("No such member.")
    if membership.role == Role.OWNER and not tenant.is_owner:
        raise ForbiddenError("Only an owner resets an owner's PIN.")
    with transaction.atomic():
        Membership.objects.filter(pk=membership.pk).update(
            pin_hash="", pin_failures=0, pin_locked_until=None
        )
        record_team_event(
            organization=tenant.organization,
            actor=tenant.user,
            action=TeamAction.PIN_RESET,
            subject=membership.user,
        )
    membership.pin_hash, membership.pin_failures, membership.pin_locked_until = "", 0, None


@dataclass(frozen=True)
class PinCheck:
    ok: bool
    tries_left: int = 0
    locked_until: datetime | None = None

    @property
    def is_locked(self) -> bool:
        return self.locked_until is not None


def check_pin(*, membership: Membership, pin: str, now: datetime | None = None) -> PinCheck:
    """Is `pin` this member's PIN? Counts a wrong one; the PIN_MAX_FAILURES-th in a row locks
    the PIN for PIN_LOCK_MINUTES. While locked, every PIN fails, the right one too.

    The row is locked (SELECT … FOR UPDATE) from reading the count to writing it, so parallel
    guesses queue behind each other and cannot get more than PIN_MAX_FAILURES tries."""
    now = now or timezone.now()
    with transaction.atomic():
        row = (
            Membership.objects.select_for_update()
            .select_related("user", "organization")
            .get(pk=membership.pk)
        )
        if row.pin_locked_until is not None and row.pin_locked_until > now:
            return PinCheck(ok=False, locked_until=row.pin_locked_until)
        if not row.is_active or not row.user.is_active or not row.pin_hash:
            return PinCheck(ok=False, tries_left=0)
        if check_password(pin, row.pin_hash):
            if row.pin_failures or row.pin_locked_until:
                Membership.objects.filter(pk=row.pk).update(pin_failures=0, pin_locked_until=None)
            return PinCheck(ok=True, tries_left=PIN_MAX_FAILURES)
        failures = row.pin_failures + 1
        if failures < PIN_MAX_FAILURES:
            Membership.objects.filter(pk=row.pk).update(pin_failures=failures)
            return PinCheck(ok=False, tries_left=PIN_MAX_FAILURES - failures)
        # Locked: the count starts again once the lock has passed.
        locked_until = now + timedelta(minutes=PIN_LOCK_MINUTES)
        Membership.objects.filter(pk=row.pk).update(pin_failures=0, pin_locked_until=locked_until)
        record_team_event(
            organization=row.organization,
            actor=None,
            action=TeamAction.PIN_LOCKED,
            subject=row.user,
            locked_until=locked_until.isoformat(),
        )
        return PinCheck(ok=False, locked_until=locked_until)


def switchable_members(device: Device) -> models.QuerySet[Membership]:
    """Who may switch in on this device: active members of its organization with a PIN, who
    may work at its location (owners and unlimited members anywhere)."""
    location = device.location
    return (
        Membership.objects.filter(
            organization_id=device.organization_id, is_active=True, user__is_active=True
        )
        .exclude(pin_hash="")
        .filter(models.Q(role=Role.OWNER) | models.Q(locations=None) | models.Q(locations=location))
        .distinct()
        .select_related("user", "organization")
        .order_by("user__name", "user__email")
    )


def device_attempt_allowed(device: Device, *, now: datetime | None = None) -> bool:
    """Count one PIN attempt on this device; False once it has had DEVICE_ATTEMPTS_PER_WINDOW
    in the current window (accounts.ratelimit). With the cache down the attempt goes ahead:
    the per-member lock of five, kept in the database, still holds."""
    now = now or timezone.now()
    window = int(now.timestamp()) // DEVICE_ATTEMPT_WINDOW_SECONDS
    key = f"till-pin-attempts:{device.pk}:{window}"
    count = count_or_none(key, DEVICE_ATTEMPT_WINDOW_SECONDS)
    return count is None or count <= DEVICE_ATTEMPTS_PER_WINDOW

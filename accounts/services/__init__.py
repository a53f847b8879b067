from datetime import datetime
from typing import Any

from axes.utils import reset
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.text import slugify

from accounts.errors import InvalidInput
from accounts.models import (
    ApiKey,
    Location,
    Membership,
    Organization,
    Role,
    TeamEvent,
    User,
    hash_api_key,
)
from accounts.validators import embed_origins


def _unique_slug(base: str, taken: set[str]) -> str:
    root = slugify(base)[:50] or "org"
    slug, n = root, 2
    while slug in taken:
        slug, n = f"{root}-{n}", n + 1
    return slug


@transaction.atomic
def create_organization(
    *,
    name: str,
    location_names: list[str],
    country: str = "GB",
    time_zone: str = "UTC",
    owner: User | None = None,
) -> Organization:
    root = slugify(name)[:50] or "org"
    org = Organization(name=name, slug=root, country=country, time_zone=time_zone)
    org.full_clean(exclude=["slug"])  # the slug is ours to choose, below
    # Two sign-ups of one name at once pick the same free slug: the second insert fails on the
    # unique slug and picks again.
    for attempt in range(5):
        taken = Organization.objects.filter(slug__startswith=root).values_list("slug", flat=True)
        org.slug = _unique_slug(name, set(taken))
        try:
            with transaction.atomic():
                org.save()
            break
        except IntegrityError:
            if attempt == 4:
                raise
    location_slugs: set[str] = set()
    for location_name in location_names or ["Main"]:
        slug = _unique_slug(location_name, location_slugs)
        location_slugs.add(slug)
        Location.objects.create(
            organization=org, name=location_name, slug=slug, time_zone=time_zone
        )
    if owner is not None:
        add_member(organization=org, user=owner, role=Role.OWNER)
    # Apps above this one set up their part of a new organization (e.g. default playbooks);
    # named in settings so dependencies still run one way.
    for hook in settings.ORGANIZATION_SETUP_HOOKS:
        import_string(hook)(organization=org)
    return org


def add_member(
    *,
    organization: Organization,
    user: User,
    role: str,
    locations: list[Location] | None = None,
) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        user=user, organization=organization, defaults={"role": role}
    )
    membership.locations.set(locations or [])
    return membership


def create_api_key(
    *,
    organization: Organization,
    name: str,
    location: Location | None = None,
    created_by: User | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with the full secret, which is never stored or shown again."""
    if location is not None and location.organization_id != organization.pk:
        raise ValueError("The location belongs to another organization.")
    if location is not None and not location.is_active:
        # It could write nothing (accounts.tenancy.refuse_archived): say so now, not at the till.
        raise ValueError(f"Location {location.slug!r} is archived: restore it first.")
    prefix, raw_key = ApiKey.generate()
    api_key = ApiKey.objects.create(
        organization=organization,
        location=location,
        name=name,
        prefix=prefix,
        hashed_key=hash_api_key(raw_key),
        created_by=created_by,
    )
    return api_key, raw_key


def revoke_api_key(*, api_key: ApiKey, now: datetime | None = None) -> bool:
    """Revoke once; True if this call revoked it (compare-and-swap, safe to repeat)."""
    now = now or timezone.now()
    changed = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now)
    if changed:
        api_key.revoked_at = now
    return bool(changed)


def unlock_login(*, email: str, ip_address: str | None = None) -> int:
    """Lift a login lockout (django-axes) for an email, from every address or from one; returns
    how many attempt records were cleared (0: it was not locked)."""
    email = email.strip().lower()
    if not email:  # axes would read no email as every email
        raise ValueError("Which email?")
    return reset(username=email, ip=ip_address or None)


def set_pos_embed_origins(*, organization: Organization, origins: str) -> None:
    """Save the origins allowed to embed the till; each must be an origin (accounts.validators),
    else an InvalidInput naming `origins` and nothing is saved."""
    try:
        origins = embed_origins(origins)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field="origins", code=exc.code) from exc
    Organization.objects.filter(pk=organization.pk).update(pos_embed_origins=origins)
    organization.pos_embed_origins = origins


def record_team_event(
    *,
    organization: Organization,
    actor: User | None,
    action: str,
    subject: User | None = None,
    subject_label: str = "",
    **detail: Any,
) -> TeamEvent:
    """Write one line of the team history (accounts.models.TeamAction), in the caller's
    transaction: the change and its record land together or not at all."""
    if not subject_label and subject is not None:
        subject_label = subject.email
    return TeamEvent.objects.create(
        organization=organization,
        actor=actor,
        action=action,
        subject=subject,
        subject_label=subject_label[:254],
        detail=detail,
    )

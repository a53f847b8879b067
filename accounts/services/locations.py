"""Adding, changing, archiving and restoring an organization's locations.

An archived location keeps its history (episodes and cases still point at it and read as
before) and takes no new episodes: `Tenant.locations()` and `Tenant.resolve_location` read
active locations only, which every write path goes through. Archiving is a compare-and-swap
on `is_active`, so two owners archiving at once record it once; the last active location
cannot go, since an organization with none could log nothing.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.errors import ConflictError, InvalidInput
from accounts.models import Location, Organization, TeamAction, User
from accounts.services import record_team_event
from accounts.services.org_settings import invalid_fields
from accounts.validators import name_problem

SLUG_MAX = 60


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("Give the location a name.", field="name", code="required")
    if len(name) > 200:
        raise InvalidInput("At most 200 characters.", field="name", code="max_length")
    problem = name_problem(name)
    if problem:
        raise InvalidInput(f"Must not hold {problem}.", field="name", code="invalid_characters")
    return name


def _validate(location: Location, fields: list[str]) -> None:
    try:
        location.full_clean(exclude=[f.name for f in location._meta.fields if f.name not in fields])
    except ValidationError as exc:
        raise invalid_fields(exc) from exc


def unique_location_slug(*, organization: Organization, name: str) -> str:
    """A slug for `name` that no location of the organization has (archived ones included:
    their slugs stay theirs, so an old API call naming one never lands on a newcomer)."""
    root = slugify(name)[: SLUG_MAX - 4] or "location"
    taken = set(
        Location.objects.filter(organization=organization, slug__startswith=root).values_list(
            "slug", flat=True
        )
    )
    slug, n = root, 2
    while slug in taken:
        slug, n = f"{root}-{n}", n + 1
    return slug


def add_location(
    *, organization: Organization, actor: User | None, name: str, time_zone: str
) -> Location:
    name = _check_name(name)
    for _attempt in range(3):
        location = Location(
            organization=organization,
            name=name,
            time_zone=time_zone,
            slug=unique_location_slug(organization=organization, name=name),
        )
        _validate(location, ["name", "time_zone"])
        try:
            with transaction.atomic():
                location.save()
                record_team_event(
                    organization=organization,
                    actor=actor,
                    action=TeamAction.LOCATION_ADDED,
                    subject_label=name,
                    location=location.pk,
                    slug=location.slug,
                    time_zone=time_zone,
                )
        except IntegrityError:
            continue  # another owner took the slug between our read and our insert: next one
        return location
    raise ConflictError("Could not find a free short name; try again.", field="name")


@transaction.atomic
def change_location(
    *, location: Location, actor: User | None, name: str, time_zone: str
) -> dict[str, dict[str, str]]:
    """Rename it or change its time zone; returns {field: {"old", "new"}} of what changed.
    The slug stays: API clients and connectors name the location by it."""
    name = _check_name(name)
    locked = Location.objects.select_for_update(no_key=True).get(pk=location.pk)
    changed = {
        field: {"old": getattr(locked, field), "new": value}
        for field, value in (("name", name), ("time_zone", time_zone))
        if getattr(locked, field) != value
    }
    if not changed:
        return {}
    for field, change in changed.items():
        setattr(locked, field, change["new"])
    _validate(locked, list(changed))
    locked.save(update_fields=list(changed))
    for field in changed:
        setattr(location, field, getattr(locked, field))
    record_team_event(
        organization=locked.organization,
        actor=actor,
        action=TeamAction.LOCATION_CHANGED,
        subject_label=locked.name,
        location=locked.pk,
        changes=changed,
    )
    return changed


@transaction.atomic
def archive_location(
    *, location: Location, actor: User | None, now: datetime | None = None
) -> bool:
    """Archive it; True if this call did (False: it was archived already). The last active
    location of the organization is a ConflictError naming `location`."""
    now = now or timezone.now()
    # Lock the organization's active locations (in primary-key order, like every lock here):
    # two owners archiving the last two at once must not both succeed.
    active = list(
        Location.objects.select_for_update(no_key=True)
        .filter(organization_id=location.organization_id, is_active=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if location.pk not in active:
        return False
    if len(active) == 1:
        raise ConflictError(
            "This is the last active location: add another before archiving it.",
            field="location",
            code="last_location",
        )
    Location.objects.filter(pk=location.pk, is_active=True).update(is_active=False, archived_at=now)
    location.is_active, location.archived_at = False, now
    record_team_event(
        organization=location.organization,
        actor=actor,
        action=TeamAction.LOCATION_ARCHIVED,
        subject_label=location.name,
        location=location.pk,
    )
    return True


@transaction.atomic
def restore_location(*, location: Location, actor: User | None) -> bool:
    """Take an archived location back into use; True if this call did."""
    changed = Location.objects.filter(pk=location.pk, is_active=False).update(
        is_active=True, archived_at=None
    )
    if not changed:
        return False
    location.is_active, location.archived_at = True, None
    record_team_event(
        organization=location.organization,
        actor=actor,
        action=TeamAction.LOCATION_RESTORED,
        subject_label=location.name,
        location=location.pk,
    )
    return True


def organization_locations(*, organization: Organization) -> models.QuerySet[Location]:
    """Every location of the organization, archived ones last (the settings page lists both)."""
    return Location.objects.filter(organization=organization).order_by("-is_active", "name")

"""Changing an organization's own settings: the owners' General settings page.

One service owns the change: it compares, validates with the model's own rules (the last word,
whatever the form checked), saves only what changed, and writes the team history line with
each changed field's old and new value, in one transaction.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.errors import InvalidFields
from accounts.models import Organization, TeamAction, User
from accounts.services import record_team_event

# What the General page edits, in the order it shows them; written once, read by the form.
SETTINGS_FIELDS = (
    "name",
    "country",
    "time_zone",
    "recovery_grace_period",
    "recovery_outcome_window",
    "care_min_visits",
    "care_gap_factor",
    "care_holdout_share",
    "drift_window",
    "drift_drop",
    "quiet_hours_start",
    "quiet_hours_end",
    "high_spender_spend",
    "text_retention_days",
)


# The unit each duration is typed and recorded in.
DURATION_UNITS = {
    "recovery_grace_period": ("hours", 3600),
    "recovery_outcome_window": ("days", 86400),
}


def invalid_fields(exc: ValidationError) -> InvalidFields:
    """A model's full_clean refusal as our error, naming each field."""
    return InvalidFields(
        [
            {"field": field, "code": error.code or "invalid", "message": " ".join(error.messages)}
            for field, errors in exc.error_dict.items()
            for error in errors
        ]
    )


def in_units(field: str, value: timedelta) -> Decimal:
    """A duration setting in its page's unit (hours for the grace period, days for the window)."""
    _unit, seconds = DURATION_UNITS[field]
    # normalize() drops trailing zeros but writes 30 as 3E+1: format it back to plain digits.
    return Decimal(f"{(Decimal(value.total_seconds()) / seconds).normalize():f}")


def shown(field: str, value: Any) -> Any:
    """A setting's value as the history keeps it (JSON), in the units the page uses."""
    if isinstance(value, timedelta):
        return f"{in_units(field, value):f} {DURATION_UNITS[field][0]}"
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    return value


@transaction.atomic
def update_organization_settings(
    *, organization: Organization, actor: User | None, values: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Set the given settings; returns {field: {"old", "new"}} for what changed (empty: nothing
    did, and nothing is recorded). An invalid value is an InvalidFields naming each field, and
    nothing is saved."""
    unknown = set(values) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"Not a setting: {sorted(unknown)}")
    # Locked so two owners saving at once record what each really changed.
    org = Organization.objects.select_for_update(no_key=True).get(pk=organization.pk)
    changed: dict[str, dict[str, Any]] = {}
    for field, value in values.items():
        old = getattr(org, field)
        if old != value:
            changed[field] = {"old": shown(field, old), "new": shown(field, value)}
            setattr(org, field, value)
    if not changed:
        return {}
    try:
        org.full_clean(exclude=[f.name for f in org._meta.fields if f.name not in changed])
    except ValidationError as exc:
        raise invalid_fields(exc) from exc
    org.save(update_fields=list(changed))
    for field in changed:
        setattr(organization, field, getattr(org, field))
    record_team_event(
        organization=org,
        actor=actor,
        action=TeamAction.SETTINGS_CHANGED,
        subject_label=org.name,
        changes=changed,
    )
    return changed

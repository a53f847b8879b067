"""The settings pages' forms: plain units in, model values out. The bounds are read from the
model's own validators, so the page and the model cannot drift apart; the service validates
again with the model as the last word."""

from __future__ import annotations

import zoneinfo
from datetime import timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import phonenumbers
from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from accounts.models import Organization
from accounts.services.org_settings import DURATION_UNITS, SETTINGS_FIELDS, in_units
from accounts.validators import name_problem


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    return [(tz, tz.replace("_", " ")) for tz in sorted(zoneinfo.available_timezones())]


@cache
def country_choices() -> list[tuple[str, str]]:
    return [(code, code) for code in sorted(phonenumbers.SUPPORTED_REGIONS)]


def model_bounds(field: str) -> tuple[Any, Any]:
    """The tightest MinValueValidator and MaxValueValidator limits on Organization.<field>."""
    low = high = None
    model_field = Organization._meta.get_field(field)
    assert isinstance(model_field, models.Field)
    for validator in model_field.validators:
        if isinstance(validator, MinValueValidator):
            low = validator.limit_value if low is None else max(low, validator.limit_value)
        elif isinstance(validator, MaxValueValidator):
            high = validator.limit_value if high is None else min(high, validator.limit_value)
    return low, high


def duration_bounds(field: str) -> tuple[Decimal, Decimal]:
    low, high = model_bounds(field)
    return in_units(field, low), in_units(field, high)


def clean_name_text(value: str) -> str:
    value = value.strip()
    problem = name_problem(value)
    if problem:
        raise forms.ValidationError(f"Must not hold {problem}.", code="invalid_characters")
    return value


class TimeZoneField(forms.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "Times on the pages and the till are shown in this zone.")
        super().__init__(choices=time_zone_choices, **kwargs)


class CountryField(forms.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "help_text",
            "ISO code (GB, US, FR, …): phone numbers typed without +country are read as this "
            "country's.",
        )
        super().__init__(choices=country_choices, **kwargs)


_grace_low, _grace_high = duration_bounds("recovery_grace_period")
_window_low, _window_high = duration_bounds("recovery_outcome_window")
_quiet_low, _quiet_high = model_bounds("quiet_hours_start")
_retention_low, _retention_high = model_bounds("text_retention_days")
_holdout_low, _holdout_high = model_bounds("care_holdout_share")
_drift_window_low, _drift_window_high = model_bounds("drift_window")
_drift_drop_low, _drift_drop_high = model_bounds("drift_drop")


class OrganizationSettingsForm(forms.Form):
    name = forms.CharField(label="Business name", max_length=200)
    country = CountryField(label="Country")
    time_zone = TimeZoneField(label="Time zone")
    recovery_grace_period = forms.DecimalField(
        label="Grace period (hours)",
        min_value=_grace_low,
        max_value=_grace_high,
        decimal_places=2,
        help_text="Time for putting things right on the spot before a bad experience opens a "
        f"case. {_grace_low:f}–{_grace_high:f} hours.",
    )
    recovery_outcome_window = forms.IntegerField(
        label="Outcome window (days)",
        min_value=int(_window_low),
        max_value=int(_window_high),
        help_text="How long after a recovery we wait to see whether the customer came back. "
        f"{_window_low:f}–{_window_high:f} days.",
    )
    care_min_visits = forms.IntegerField(
        label="Visits to count as a regular",
        min_value=1,
        max_value=1000,
        help_text="Care cases look after regulars: customers with at least this many visits.",
    )
    care_gap_factor = forms.DecimalField(
        label="Lapsing after (times their usual gap)",
        min_value=Decimal("1.0"),
        max_value=Decimal("99.9"),
        max_digits=3,
        decimal_places=1,
        help_text="A regular is lapsing when their gap since the last visit is this many times "
        "their usual one. 1.0–99.9.",
    )
    care_holdout_share = forms.IntegerField(
        label="Care holdout (% of care cases)",
        min_value=_holdout_low,
        max_value=_holdout_high,
        help_text="This share of lapsing regulars' care cases is picked at random and held "
        "out: recorded and measured, never shown and nobody contacts them, so "
        f"Insights can show whether care brings regulars back. {_holdout_low}–{_holdout_high}; "
        "0 turns it off.",
    )
    drift_window = forms.IntegerField(
        label="Drift: experiences looked at",
        min_value=_drift_window_low,
        max_value=_drift_window_high,
        help_text="A regular's last this many experiences that carry one are checked for a "
        f"slide. {_drift_window_low}–{_drift_window_high}.",
    )
    drift_drop = forms.IntegerField(
        label="Drift: how far they slide",
        min_value=_drift_drop_low,
        max_value=_drift_drop_high,
        help_text="They are drifting when those experiences fall at least this far from the "
        "first to the last (on the scale from −2 to +2) with no negative among them, e.g. "
        f"+2, +1, 0 with 2. {_drift_drop_low}–{_drift_drop_high}.",
    )
    quiet_hours_start = forms.IntegerField(
        label="Quiet hours from (hour, 0–23)",
        min_value=_quiet_low or 0,
        max_value=_quiet_high,
        help_text="Escalation emails wait from this local hour…",
    )
    quiet_hours_end = forms.IntegerField(
        label="Quiet hours until (hour, 0–23)",
        min_value=_quiet_low or 0,
        max_value=_quiet_high,
        help_text="…until this one.",
    )
    high_spender_spend = forms.DecimalField(
        label="High spender from (total spend)",
        min_value=Decimal(0),
        max_digits=10,
        decimal_places=2,
        help_text="Playbooks may treat customers who spent at least this much differently.",
    )
    text_retention_days = forms.IntegerField(
        label="Keep free text for (days)",
        required=False,
        min_value=_retention_low,
        max_value=_retention_high,
        help_text="Episode texts older than this are cleared nightly; counts and insights stay. "
        f"Empty: kept. {_retention_low}–{_retention_high} days.",
    )

    def __init__(self, *args: Any, read_only: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if read_only:
            for field in self.fields.values():
                field.disabled = True

    @classmethod
    def initial_for(cls, organization: Organization) -> dict[str, Any]:
        initial = {field: getattr(organization, field) for field in SETTINGS_FIELDS}
        for field in DURATION_UNITS:
            initial[field] = in_units(field, initial[field])
        return initial

    def clean_name(self) -> str:
        return clean_name_text(self.cleaned_data["name"])

    def clean_recovery_grace_period(self) -> timedelta:
        return timedelta(seconds=int(self.cleaned_data["recovery_grace_period"] * 3600))

    def clean_recovery_outcome_window(self) -> timedelta:
        return timedelta(days=self.cleaned_data["recovery_outcome_window"])


class LocationForm(forms.Form):
    name = forms.CharField(label="Name", max_length=200)
    time_zone = TimeZoneField(label="Time zone")

    def clean_name(self) -> str:
        return clean_name_text(self.cleaned_data["name"])

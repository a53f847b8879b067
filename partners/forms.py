"""The partner pages' forms: what the page parses. The rules (a touchpoint taken, a phone
number) are the services'; a DomainError they raise is put on its field here."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from django import forms
from django.utils import timezone

from accounts.errors import DomainError
from cxcore.rules import check_date_in_range
from cxcore.vocabulary import Touchpoint
from partners.models import Partner
from partners.selectors import last_full_month


class PartnerForm(forms.Form):
    name = forms.CharField(max_length=100, label="Name")
    contact_name = forms.CharField(max_length=100, required=False, label="Contact name")
    contact_email = forms.CharField(max_length=254, required=False, label="Contact email")
    contact_phone = forms.CharField(max_length=40, required=False, label="Contact phone")
    touchpoints = forms.MultipleChoiceField(
        choices=Touchpoint.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Touchpoints they run",
        help_text="A bad experience on one of these opens an incident for this partner. "
        "A touchpoint is run by one active partner at most.",
        error_messages={"required": "Tick the touchpoints this partner runs."},
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    @classmethod
    def for_partner(cls, partner: Partner) -> PartnerForm:
        return cls(initial={name: getattr(partner, name) for name in cls.base_fields})

    def fields_for_service(self) -> dict[str, Any]:
        return dict(self.cleaned_data)

    def add_domain_error(self, exc: DomainError) -> None:
        """A service's refusal, on the field it names (or above the form)."""
        self.add_error(exc.field if exc.field in self.fields else None, exc.message)


class IncidentActionForm(forms.Form):
    ACTIONS = (("answer", "Record the answer"), ("fixed", "Fixed"), ("disputed", "Disputed"))

    action = forms.ChoiceField(choices=ACTIONS)
    answer = forms.CharField(required=False, max_length=2000, strip=False)


MONTH_FORMAT = "%Y-%m"


class MonthForm(forms.Form):
    """`?month=2026-11` (the scorecard's, in the page and the API alike); none: the last full
    month."""

    month = forms.CharField(required=False, max_length=7)

    def clean_month(self) -> date | None:
        raw = self.cleaned_data["month"]
        if not raw:
            return None
        try:
            if not re.fullmatch(r"\d{4}-\d{2}", raw):
                raise ValueError(raw)
            value = datetime.strptime(raw, MONTH_FORMAT).date()
            check_date_in_range(value)
        except ValueError as exc:
            raise forms.ValidationError("A month as YYYY-MM, e.g. 2026-11.") from exc
        return value

    def chosen_month(self) -> date:
        """The month asked for when valid, else the last full one."""
        if self.is_valid() and self.cleaned_data["month"] is not None:
            month: date = self.cleaned_data["month"]
            return month
        return last_full_month(timezone.localdate())

"""Forms of the till pages (accounts/device_views.py). The rules are the services'
(accounts.services.devices); these only parse, and show a service's refusal on its field."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.db.models import QuerySet

from accounts.models import Location
from accounts.services.devices import PIN_MAX_LENGTH, pin_problem

PIN_WIDGET_ATTRS = {
    "inputmode": "numeric",
    "autocomplete": "off",
    "pattern": "[0-9]*",
    "maxlength": str(PIN_MAX_LENGTH),
}


class PairingForm(forms.Form):
    location = forms.ModelChoiceField(
        queryset=Location.objects.none(), empty_label=None, help_text="Where the till stands."
    )
    name = forms.CharField(
        max_length=100, label="Till name", help_text="A label, e.g. 'Front counter'."
    )

    def __init__(self, *args: Any, locations: QuerySet[Location], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast("forms.ModelChoiceField[Location]", self.fields["location"])
        field.queryset = locations


class PinForm(forms.Form):
    """A member sets or changes their own PIN; changing one asks for their password, so a
    colleague at an unattended, signed-in till cannot give themselves someone's PIN."""

    current_password = forms.CharField(
        label="Your password",
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    pin = forms.CharField(
        label="New PIN (4 to 6 digits)",
        strip=False,
        widget=forms.PasswordInput(attrs=PIN_WIDGET_ATTRS),
    )
    pin_again = forms.CharField(
        label="The new PIN again", strip=False, widget=forms.PasswordInput(attrs=PIN_WIDGET_ATTRS)
    )

    def __init__(self, *args: Any, user: Any, asks_password: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.asks_password = asks_password
        if not asks_password:
            del self.fields["current_password"]

    def clean_current_password(self) -> str:
        password = self.cleaned_data.get("current_password", "")
        if self.asks_password and not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.", code="wrong_password")
        return password

    def clean_pin(self) -> str:
        pin = self.cleaned_data["pin"]
        problem = pin_problem(pin)
        if problem:
            raise forms.ValidationError(problem, code="invalid_pin")
        return pin

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("pin") and data.get("pin_again") != data["pin"]:
            self.add_error("pin_again", "The two PINs differ.")
        return data

"""Forms of the team pages and the invitation link. They parse; the rules are
accounts.services.team's, whose errors the views put back on these fields."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.db.models import QuerySet

from accounts.models import Location, Role
from accounts.validators import validate_strict_email


class LocationsField(forms.ModelMultipleChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            queryset=Location.objects.none(),
            required=False,
            widget=forms.CheckboxSelectMultiple,
            label="Locations",
            help_text="None ticked: every location. Owners always see every location.",
            **kwargs,
        )

    def label_from_instance(self, obj: Location) -> str:
        return obj.name


class _TeamForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, initial=Role.STAFF, label="Role")
    locations = LocationsField()

    def __init__(self, *args: Any, locations: QuerySet[Location], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast("LocationsField", self.fields["locations"]).queryset = locations


class InviteForm(_TeamForm):
    email = forms.EmailField(label="Email", max_length=254, validators=[validate_strict_email])
    field_order = ["email", "role", "locations"]


class MemberForm(_TeamForm):
    pass


class AcceptInvitationForm(forms.Form):
    name = forms.CharField(
        label="Your name",
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
        help_text="As your colleagues see it on the team page and in case histories.",
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        help_text="At least 8 characters, not all digits, not a common password.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password_again = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data

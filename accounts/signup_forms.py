"""Sign-up and profile forms. The rules (password validators, the unique email, the model's
checks) are the service's (accounts/services/signup.py); these parse and label."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.settings_forms import CountryField, TimeZoneField, clean_name_text


class SignupForm(forms.Form):
    organization_name = forms.CharField(label="Business name", max_length=200)
    country = CountryField(label="Country", initial="GB")
    time_zone = TimeZoneField(label="Time zone", initial="Europe/London")
    location_name = forms.CharField(
        label="First location",
        max_length=200,
        help_text="The venue's name, e.g. 'Main St'. You can add more later.",
    )
    owner_name = forms.CharField(label="Your name", max_length=150)
    email = forms.CharField(
        label="Email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not only digits, not a common password.",
    )
    # Who signs in already adds an organization to their account: no account fields.
    ACCOUNT_FIELDS = ("owner_name", "email", "password")

    def __init__(self, *args: Any, with_account: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not with_account:
            for name in self.ACCOUNT_FIELDS:
                del self.fields[name]

    def clean_organization_name(self) -> str:
        return clean_name_text(self.cleaned_data["organization_name"])

    def clean_location_name(self) -> str:
        return clean_name_text(self.cleaned_data["location_name"])

    def clean_owner_name(self) -> str:
        return clean_name_text(self.cleaned_data["owner_name"])


class ProfileForm(forms.Form):
    name = forms.CharField(
        label="Your name",
        max_length=150,
        required=False,
        help_text="How the queue, case history, digests and the till name you. Empty: your email.",
    )

    def clean_name(self) -> str:
        return clean_name_text(self.cleaned_data["name"])

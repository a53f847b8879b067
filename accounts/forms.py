import secrets
from typing import Any, cast

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core import signing
from django.db.models import QuerySet

from accounts.models import Location
from accounts.validators import embed_origins, validate_strict_email


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email",
        widget=forms.EmailInput(attrs={"autofocus": True}),
        validators=[validate_strict_email],  # one @, no control or bidi character
    )

    def clean_username(self) -> str:
        # Emails are stored lower-case; a tablet keyboard capitalises the first letter.
        return self.cleaned_data["username"].lower()


class ApiKeyForm(forms.Form):
    # Each rendering of the form gets a signed one-time id: posting it twice (a reload of the
    # page that showed the new key) creates one key (see ApiKeyListView).
    FORM_MAX_AGE_SECONDS = 3600
    FORM_ID_SALT = "accounts.ApiKeyForm.form_id"

    form_id = forms.CharField(widget=forms.HiddenInput)
    name = forms.CharField(max_length=100, help_text="A label, e.g. 'Till 1 at Main St'.")
    location = forms.ModelChoiceField(
        queryset=Location.objects.none(),
        required=False,
        empty_label="Every location",
        help_text="Limit the key to one location.",
    )

    def __init__(
        self, *args: Any, locations: QuerySet[Location] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if locations is not None:
            # self.fields holds copies of the declared fields, typed as plain Fields.
            location = cast("forms.ModelChoiceField[Location]", self.fields["location"])
            location.queryset = locations
        if not self.is_bound:
            signer = signing.TimestampSigner(salt=self.FORM_ID_SALT)
            self.initial["form_id"] = signer.sign(secrets.token_urlsafe(16))

    def clean_form_id(self) -> str:
        signer = signing.TimestampSigner(salt=self.FORM_ID_SALT)
        try:
            return signer.unsign(self.cleaned_data["form_id"], max_age=self.FORM_MAX_AGE_SECONDS)
        except signing.BadSignature as exc:  # SignatureExpired is one
            raise forms.ValidationError(
                "This form is too old or was changed: create the key again.", code="stale_form"
            ) from exc


class EmbedOriginsForm(forms.Form):
    origins = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="POS systems allowed to embed the till sidebar",
        help_text="One origin per line, e.g. https://pos.example.com. Empty: nobody.",
    )

    def clean_origins(self) -> str:
        return embed_origins(self.cleaned_data["origins"])

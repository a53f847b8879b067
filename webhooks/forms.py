import secrets

from django import forms
from django.core import signing

from webhooks.services import DESCRIPTION_MAX_LENGTH, URL_MAX_LENGTH
from webhooks.vocabulary import SUBSCRIBABLE, EventType


class EndpointForm(forms.Form):
    """A new endpoint. Like the API key form, each rendering carries a signed one-time id, so
    reloading the answer that showed the secret creates nothing and shows no secret."""

    FORM_MAX_AGE_SECONDS = 3600
    FORM_ID_SALT = "webhooks.EndpointForm.form_id"

    form_id = forms.CharField(widget=forms.HiddenInput)
    url = forms.CharField(
        max_length=URL_MAX_LENGTH, label="URL", help_text="https://…, where your system listens."
    )
    events = forms.MultipleChoiceField(
        choices=[(value, label) for value, label in EventType.choices if value in SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
    )
    description = forms.CharField(max_length=DESCRIPTION_MAX_LENGTH, required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            signer = signing.TimestampSigner(salt=self.FORM_ID_SALT)
            self.initial["form_id"] = signer.sign(secrets.token_urlsafe(16))

    def clean_form_id(self) -> str:
        signer = signing.TimestampSigner(salt=self.FORM_ID_SALT)
        try:
            return signer.unsign(self.cleaned_data["form_id"], max_age=self.FORM_MAX_AGE_SECONDS)
        except signing.BadSignature as exc:
            raise forms.ValidationError(
                "This form is too old or was changed: add the endpoint again.", code="stale_form"
            ) from exc

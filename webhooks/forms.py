from django import forms

from accounts.forms import OneTimeFormMixin
from webhooks.services import DESCRIPTION_MAX_LENGTH, URL_MAX_LENGTH
from webhooks.vocabulary import SUBSCRIBABLE, EventType


class EndpointForm(OneTimeFormMixin):
    """A new endpoint. Like the API key form, each rendering carries a signed one-time id, so
    reloading the answer that showed the secret creates nothing and shows no secret."""

    FORM_ID_SALT = "webhooks.EndpointForm.form_id"
    STALE_FORM_MESSAGE = "This form is too old or was changed: add the endpoint again."

    url = forms.CharField(
        max_length=URL_MAX_LENGTH, label="URL", help_text="https://…, where your system listens."
    )
    events = forms.MultipleChoiceField(
        choices=[(value, label) for value, label in EventType.choices if value in SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
    )
    description = forms.CharField(max_length=DESCRIPTION_MAX_LENGTH, required=False)

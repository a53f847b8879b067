import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core import signing
from django.core.cache import cache
from django.db.models import QuerySet

from accounts.models import Location
from accounts.validators import embed_origins, validate_strict_email

if TYPE_CHECKING:
    from accounts.tenancy import Tenant


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email",
        widget=forms.EmailInput(attrs={"autofocus": True}),
        validators=[validate_strict_email],  # one @, no control or bidi character
    )

    def clean_username(self) -> str:
        # Emails are stored lower-case; a tablet keyboard capitalises the first letter.
        return self.cleaned_data["username"].lower()


class OneTimeFormMixin(forms.Form):
    """A form whose every rendering carries a signed one-time id, for forms that create
    something shown once (a key's or an endpoint's secret): the view claims the id with
    claim_form, so posting it twice (a reload of the answer) creates one thing.

    Subclasses set FORM_ID_SALT and STALE_FORM_MESSAGE (what to do again)."""

    FORM_MAX_AGE_SECONDS = 3600
    FORM_ID_SALT: str
    STALE_FORM_MESSAGE: str

    form_id = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            signer = signing.TimestampSigner(salt=self.FORM_ID_SALT)
            self.initial["form_id"] = signer.sign(secrets.token_urlsafe(16))

    def clean_form_id(self) -> str:
        signer = signing.TimestampSigner(salt=self.FORM_ID_SALT)
        try:
            return signer.unsign(self.cleaned_data["form_id"], max_age=self.FORM_MAX_AGE_SECONDS)
        except signing.BadSignature as exc:  # SignatureExpired is one
            raise forms.ValidationError(self.STALE_FORM_MESSAGE, code="stale_form") from exc


@dataclass
class FormClaim:
    """A one-time form's claim: `fresh` when this post is the first, else `earlier` is the
    pk the first post created (0 while it is still creating, or if the claim is gone). A
    fresh claim's view sets `created` to what it made."""

    fresh: bool
    earlier: int = 0
    created: int | None = None


@contextmanager
def claim_form(prefix: str, tenant: "Tenant", form_id: str) -> Iterator[FormClaim]:
    """Claim a one-time form id (OneTimeFormMixin) before creating anything, so two posts of
    one form cannot both create. If the block creates nothing (it sets no `created`, or
    raises), the claim is given back and the form may be posted again."""
    key = f"{prefix}:{tenant.organization.pk}:{form_id}"
    timeout = OneTimeFormMixin.FORM_MAX_AGE_SECONDS
    if not cache.add(key, 0, timeout=timeout):
        yield FormClaim(fresh=False, earlier=cache.get(key) or 0)
        return
    claim = FormClaim(fresh=True)
    try:
        yield claim
    except BaseException:
        cache.delete(key)
        raise
    if claim.created is None:
        cache.delete(key)
    else:
        cache.set(key, claim.created, timeout=timeout)


class ApiKeyForm(OneTimeFormMixin):
    # See ApiKeyListView for why the form is one-time.
    FORM_ID_SALT = "accounts.ApiKeyForm.form_id"
    STALE_FORM_MESSAGE = "This form is too old or was changed: create the key again."

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


class EmbedOriginsForm(forms.Form):
    origins = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="POS systems allowed to embed the till sidebar",
        help_text="One origin per line, e.g. https://pos.example.com. Empty: nobody.",
    )

    def clean_origins(self) -> str:
        return embed_origins(self.cleaned_data["origins"])

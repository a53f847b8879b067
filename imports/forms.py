"""The import page's forms: the upload, and the generic format's column mapping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.conf import settings

from imports.formats import CUSTOMER_FIELDS
from imports.models import ImportFormat

CUSTOMER_FORMAT_CHOICES = [
    (ImportFormat.SQUARE.value, ImportFormat.SQUARE.label),
    (ImportFormat.GENERIC.value, ImportFormat.GENERIC.label),
]


class UploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="Square: Customers → Export customers. Up to the size limit below.",
    )
    format = forms.ChoiceField(
        label="What kind of file", choices=CUSTOMER_FORMAT_CHOICES, initial="square"
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        limit = settings.IMPORT_MAX_UPLOAD_MB * 1024 * 1024
        if upload.size > limit:
            raise forms.ValidationError(
                f"The file is larger than {settings.IMPORT_MAX_UPLOAD_MB} MB.", code="too_large"
            )
        if upload.size == 0:
            raise forms.ValidationError("The file is empty.", code="empty")
        return upload


class MappingForm(forms.Form):
    """One select per column of the file: which field it feeds, or nothing."""

    upload = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, headers: Sequence[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.headers = list(headers)
        choices = [("", "— not imported —"), *CUSTOMER_FIELDS.items()]
        for index, header in enumerate(self.headers):
            self.fields[f"column_{index}"] = forms.ChoiceField(
                label=header or f"Column {index + 1}", choices=choices, required=False
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        chosen: dict[str, str] = {}
        for index, header in enumerate(self.headers):
            field = cleaned.get(f"column_{index}")
            if not field:
                continue
            if field in chosen.values():
                self.add_error(f"column_{index}", f"Another column is {CUSTOMER_FIELDS[field]}.")
            chosen[header] = field
        if not {"phone", "email", "pos_id"} & set(chosen.values()):
            raise forms.ValidationError(
                "Choose the column with the phone, the email or the POS customer id.",
                code="no_identifier",
            )
        cleaned["column_map"] = chosen
        return cleaned

"""The import page's forms: the upload, and the generic format's column mapping."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any, cast

from django import forms
from django.conf import settings
from django.db.models import QuerySet

from accounts.models import Location
from imports.formats import CUSTOMER_FIELDS
from imports.history_formats import HISTORY_FORMATS, FileRefused, header_key, read_rows
from imports.models import ImportFormat

FORMAT_CHOICES = [
    (ImportFormat.SQUARE.value, ImportFormat.SQUARE.label),
    (ImportFormat.GENERIC.value, ImportFormat.GENERIC.label),
    (ImportFormat.SQUARE_TRANSACTIONS.value, ImportFormat.SQUARE_TRANSACTIONS.label),
    (ImportFormat.SQUARE_ITEMS.value, ImportFormat.SQUARE_ITEMS.label),
]
# Enough for any real header row; a longer first line is no Square export.
HEADER_BYTES = 64 * 1024


class UploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text=(
            "Square: Customers → Export customers; Reports → Transactions or Item details → "
            "Export. Import the customers first: the history finds them by Square's Customer ID."
        ),
    )
    format = forms.ChoiceField(label="What kind of file", choices=FORMAT_CHOICES, initial="square")
    location = forms.ModelChoiceField(
        label="Location (history files)",
        queryset=Location.objects.none(),
        required=False,
        empty_label="The file's Location column",
        help_text="Every row of a transactions or item details export is put at this location.",
    )

    def __init__(
        self, *args: Any, locations: QuerySet[Location] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.locations = locations if locations is not None else Location.objects.none()
        field = cast("forms.ModelChoiceField[Location]", self.fields["location"])
        field.queryset = self.locations

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

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        upload, fmt = cleaned.get("file"), cleaned.get("format")
        if upload is not None and fmt in HISTORY_FORMATS:
            self._check_history_header(upload, fmt, cleaned.get("location"))
        return cleaned

    def _check_history_header(self, upload: Any, fmt: str, location: Location | None) -> None:
        """A history file that is not its format is refused at the upload, naming the column
        it lacks, as a customers file is; and a file without a Location column needs the
        location chosen when the organization has more than one (else every row is refused)."""
        upload.seek(0)
        first = upload.readline(HEADER_BYTES)
        upload.seek(0)
        try:
            header = next(csv.reader([first.decode("utf-8-sig")]), [])
            read_rows(io.StringIO(first.decode("utf-8-sig")), fmt)
        except UnicodeDecodeError:
            self.add_error("file", "The file is not UTF-8 text.")
            return
        except (csv.Error, FileRefused) as exc:
            self.add_error("file", str(exc))
            return
        has_location = any(header_key(name) == "location" for name in header)
        if not has_location and location is None and self.locations.count() > 1:
            self.add_error(
                "location", "This file has no Location column: choose where its rows happened."
            )


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

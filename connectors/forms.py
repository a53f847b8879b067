from django import forms

from accounts.errors import DomainError


class SquareConnectForm(forms.Form):
    signature_key = forms.CharField(
        max_length=200,
        widget=forms.PasswordInput(render_value=False),
        help_text="From your webhook subscription in Square's Developer Dashboard (paste it "
        "again to change the locations).",
    )
    locations = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One “Square location id = our location slug” a line, e.g. L8GQ2ABC = main-st.",
    )

    def clean_locations(self) -> dict[str, str]:
        mapping: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data["locations"].splitlines(), 1):
            if not line.strip():
                continue
            square_id, equals, slug = line.partition("=")
            if not equals or not square_id.strip() or not slug.strip():
                raise forms.ValidationError(f"Line {number}: write “Square location id = slug”.")
            mapping[square_id.strip()] = slug.strip()
        return mapping


class ReasonMapForm(forms.Form):
    entries = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text="One “reason words = touchpoint” a line; end it with ! when the item never came.",
    )


def invalid_input_message(exc: DomainError) -> str:
    return f"{exc.field}: {exc.message}" if exc.field else exc.message

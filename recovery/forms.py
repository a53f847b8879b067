from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.utils import timezone

from cxcore.rules import check_date_in_range
from cxcore.vocabulary import EpisodeKind, Touchpoint
from recovery.models import Playbook
from recovery.rules import check_action_template, check_sla
from recovery.vocabulary import PLAYBOOK_FIELDS, Standing, placeholder_help

SLA_UNITS = {"hours": timedelta(hours=1), "days": timedelta(days=1)}


def sla_parts(value: timedelta | None) -> tuple[Decimal | int | None, str]:
    """A duration as the editor shows it: whole days as days, else hours."""
    if value is None:
        return None, "hours"
    if value >= SLA_UNITS["days"] and value % SLA_UNITS["days"] == timedelta(0):
        return value // SLA_UNITS["days"], "days"
    hours = Decimal(value.total_seconds()) / 3600
    if hours == hours.to_integral_value():
        return int(hours), "hours"
    return hours.quantize(Decimal("0.01")).normalize(), "hours"  # 1.5, not 1.50


def sla_words(value: timedelta) -> str:
    """'4 hours', '1 day', '1.5 hours': an SLA as the playbook list says it."""
    number, unit = sla_parts(value)
    if number == 1:
        unit = unit.removesuffix("s")
    return f"{number} {unit}"


class SlaWidget(forms.MultiWidget):
    """A number and a unit (hours or days), each labelled for screen readers; the page's
    fieldset legend is the visible label."""

    def __init__(self, label: str = "", attrs: dict[str, Any] | None = None) -> None:
        number = {"min": "0", "step": "any", "inputmode": "decimal", "class": "sla-n"}
        widgets = (
            forms.NumberInput(attrs={**number, "aria-label": f"{label}: how many"}),
            forms.Select(
                choices=[(u, u) for u in SLA_UNITS], attrs={"aria-label": f"{label}: unit"}
            ),
        )
        super().__init__(widgets, attrs)

    def decompress(self, value: Any) -> list[Any]:
        if isinstance(value, timedelta):
            return list(sla_parts(value))
        return [None, "hours"]


class SlaField(forms.MultiValueField):
    """An SLA entered as a number of hours or days: '4' 'hours', '2' 'days'."""

    default_error_messages = {
        "required": "Enter how many hours or days, e.g. 4 hours.",
        "invalid": "Enter a number of hours or days, e.g. 4 hours or 2 days.",
    }

    def __init__(self, *, label: str, **kwargs: Any) -> None:
        fields = (
            forms.DecimalField(
                max_digits=7,
                decimal_places=2,
                error_messages={"invalid": "Enter a number, e.g. 4 or 1.5."},
            ),
            forms.ChoiceField(choices=[(u, u) for u in SLA_UNITS]),
        )
        super().__init__(
            fields, label=label, widget=SlaWidget(label), require_all_fields=True, **kwargs
        )

    def compress(self, data_list: list[Any]) -> timedelta | None:
        if not data_list:
            return None
        number, unit = data_list
        if number is None or unit not in SLA_UNITS:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if number <= 0:
            raise forms.ValidationError("Must be more than zero.", code="min_value")
        return SLA_UNITS[unit] * float(number)


class PlaybookForm(forms.ModelForm):
    match_touchpoints = forms.MultipleChoiceField(
        choices=Touchpoint.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Touchpoints",
        help_text="Any of these went wrong. None ticked: any touchpoint.",
    )
    match_kinds = forms.MultipleChoiceField(
        choices=EpisodeKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Kinds of episode",
        help_text="None ticked: any kind.",
    )
    match_standing = forms.MultipleChoiceField(
        choices=Standing.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Who the customer is",
        help_text="None ticked: anyone.",
    )
    ack_sla = SlaField(label="Acknowledge within")
    resolve_sla = SlaField(label="Resolve within")
    match_max_experience = forms.TypedChoiceField(
        choices=[("", "any"), ("-2", "very negative"), ("-1", "negative or worse")],
        coerce=int,
        empty_value=None,
        required=False,
        label="Worst experience",
    )
    actions_text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        label="Suggested actions",
        help_text="One per line. " + placeholder_help(),
    )

    class Meta:
        model = Playbook
        # The actions are edited as one text (actions_text), one per line.
        fields = [name for name in PLAYBOOK_FIELDS if name != "actions"]
        labels = {
            "is_active": "Active",
            "case_kind": "Kind of case",
            "match_third_party": "Only when a partner ran the touchpoint (valet, delivery…)",
            "escalate_to": "When it runs late, tell",
            "show_at_visit": "Show it at the till when the customer is next in",
        }
        help_texts = {"match_third_party": ""}  # the label says it

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["actions_text"] = "\n".join(self.instance.actions)

    def clean_actions_text(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["actions_text"].splitlines()]
        actions = [line for line in lines if line]
        if len(actions) > 10 or any(len(line) > 300 for line in actions):
            raise forms.ValidationError("Up to 10 actions of up to 300 characters each.")
        for line in actions:
            try:
                check_action_template(line)
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return actions

    def clean(self):
        cleaned = super().clean() or {}
        for name in ("ack_sla", "resolve_sla"):
            value = cleaned.get(name)
            if value is not None:
                try:
                    check_sla(value)
                except ValueError as exc:
                    self.add_error(name, str(exc))
        return cleaned

    def playbook_fields(self) -> dict:
        data = {name: self.cleaned_data[name] for name in self.Meta.fields}
        data["actions"] = self.cleaned_data["actions_text"]
        return data


class VariantForm(forms.Form):
    """One action variant of a playbook (an experiment arm), edited on the playbook page."""

    name = forms.CharField(max_length=100, label="Variant name")
    actions_text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Its actions",
        help_text="One per line. " + placeholder_help(),
    )
    is_active = forms.BooleanField(required=False, initial=True, label="In the experiment")

    def clean_actions_text(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["actions_text"].splitlines()]
        actions = [line for line in lines if line]
        if not actions:
            raise forms.ValidationError("A variant suggests at least one action.")
        if len(actions) > 10 or any(len(line) > 300 for line in actions):
            raise forms.ValidationError("Up to 10 actions of up to 300 characters each.")
        for line in actions:
            try:
                check_action_template(line)
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return actions


class EndExperimentForm(forms.Form):
    """End a playbook's experiment, keeping one of its active variants."""

    kept_variant = forms.TypedChoiceField(coerce=int, choices=[], label="Keep")

    def __init__(self, *args: Any, variants: Sequence[Any] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kept = self.fields["kept_variant"]
        assert isinstance(kept, forms.TypedChoiceField)
        kept.choices = [(v.pk, v.name) for v in variants]


class BulkForm(forms.Form):
    cases = forms.TypedMultipleChoiceField(coerce=int, choices=[])
    action = forms.ChoiceField(choices=[("assign", "Assign"), ("dismiss", "Dismiss")])
    assignee = forms.IntegerField(required=False, min_value=1)
    reason = forms.CharField(required=False, max_length=500)

    def __init__(self, *args, case_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        cases = self.fields["cases"]
        assert isinstance(cases, forms.TypedMultipleChoiceField)
        cases.choices = [(i, i) for i in case_ids]


MAX_INSIGHTS_DAYS = 366


class InsightsForm(forms.Form):
    """The insights page's period and place, in the API's parameters: `from`, `to` and
    `location` (GET /api/v1/insights/summary/), with the same defaults and limits."""

    location = forms.SlugField(required=False, max_length=60, label="Location")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # `from` is a Python keyword: these fields are named here rather than as attributes.
        self.fields["from"] = forms.DateField(required=False, label="From")
        self.fields["to"] = forms.DateField(required=False, label="To")
        self.order_fields(["from", "to", "location"])

    def _in_range(self, name: str) -> date | None:
        value = self.cleaned_data.get(name)
        if value is not None:
            try:
                check_date_in_range(value)
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return value

    def clean_from(self) -> date | None:
        return self._in_range("from")

    def clean_to(self) -> date | None:
        return self._in_range("to")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "from" in self.errors or "to" in self.errors:
            return cleaned
        end = cleaned.get("to") or timezone.localdate()
        start = cleaned.get("from") or end - timedelta(days=29)
        if start > end:
            self.add_error("from", "Must not be after “To”.")
        elif (end - start).days > MAX_INSIGHTS_DAYS:
            self.add_error("from", "At most a year at a time.")
        cleaned["period"] = (start, end)
        return cleaned

    def period(self) -> tuple[date, date]:
        """The period asked for when it is valid, else the last 30 days."""
        if self.is_valid():
            start, end = self.cleaned_data["period"]
            return start, end
        today = timezone.localdate()
        return today - timedelta(days=29), today

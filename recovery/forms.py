from datetime import date, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from cxcore.vocabulary import EpisodeKind, Touchpoint
from recovery.models import Playbook
from recovery.rules import check_action_template, check_sla
from recovery.vocabulary import PLAYBOOK_FIELDS, Standing, placeholder_help


class PlaybookForm(forms.ModelForm):
    match_touchpoints = forms.MultipleChoiceField(
        choices=Touchpoint.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    match_kinds = forms.MultipleChoiceField(
        choices=EpisodeKind.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    match_standing = forms.MultipleChoiceField(
        choices=Standing.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
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
        help_texts = {"ack_sla": "e.g. 04:00:00 (hours) or 1 00:00:00 (a day)"}

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
        cleaned = super().clean()
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


class BulkForm(forms.Form):
    cases = forms.TypedMultipleChoiceField(coerce=int, choices=[])
    action = forms.ChoiceField(choices=[("assign", "Assign"), ("dismiss", "Dismiss")])
    assignee = forms.IntegerField(required=False, min_value=1)
    reason = forms.CharField(required=False, max_length=500)

    def __init__(self, *args, case_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cases"].choices = [(i, i) for i in case_ids]


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

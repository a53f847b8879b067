from django import forms

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


class InsightsForm(forms.Form):
    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To")
    location = forms.SlugField(required=False)

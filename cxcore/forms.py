"""The customer page's forms: notes, a call or outreach, an experience corrected."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.utils.text import Truncator

from cxcore.models import EXPERIENCE_LABELS, Customer, Episode

EXPERIENCE_CHOICES = [(value, f"{value:+d} {label}") for value, label in EXPERIENCE_LABELS.items()]
NOTES_MAX = Customer._meta.get_field("notes").max_length or 2000


class NotesForm(forms.Form):
    notes = forms.CharField(
        required=False,
        max_length=NOTES_MAX,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Notes",
        help_text="Allergies, preferred name, what they like: every location and shift reads it.",
    )

    def clean_notes(self) -> str:
        return self.cleaned_data["notes"].replace("\x00", "")


class OutreachForm(forms.Form):
    """A call, an email or a message to the customer: an outreach episode (a follow-up)."""

    CHANNELS = [
        ("call", "Phone call"),
        ("email", "Email"),
        ("message", "Text message"),
        ("in_person", "In person"),
    ]

    channel = forms.ChoiceField(choices=CHANNELS, label="How")
    summary = forms.CharField(
        max_length=2000,
        label="What was said",
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say what was said (a few words are enough)."},
    )

    def clean_summary(self) -> str:
        return self.cleaned_data["summary"].replace("\x00", "")

    def episode_summary(self) -> str:
        """'Phone call: left a voicemail, will call back Friday'."""
        label = dict(self.CHANNELS)[self.cleaned_data["channel"]]
        return f"{label}: {self.cleaned_data['summary']}"


class ExperienceForm(forms.Form):
    """Correct one episode's experience; `episode` is chosen from the page's episodes."""

    episode = forms.IntegerField(min_value=1, label="Episode")
    experience = forms.TypedChoiceField(
        choices=[("", "none"), *EXPERIENCE_CHOICES],
        coerce=int,
        empty_value=None,
        required=False,
        label="Experience",
    )
    reason = forms.CharField(max_length=500, required=False, label="Why (optional)")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["episode"].error_messages["required"] = "Choose the episode to correct."


def episode_options(episodes: Iterable[Episode], *, time_zone: str) -> list[tuple[int, str]]:
    """The correction control's choice of episodes: 'Sat 10 Jan 2026, 12:00 · Complaint ·
    -2 very negative (inferred) · The cashier forgot…'."""
    options = []
    for e in episodes:
        zone = ZoneInfo(e.location.time_zone if e.location else time_zone)
        local = e.occurred_at.astimezone(zone)
        parts = [f"{local:%a} {local.day} {local:%b %Y, %H:%M}", e.get_kind_display()]
        if e.experience is not None:
            inferred = " (inferred)" if e.experience_source == "inferred" else ""
            parts.append(f"{e.experience:+d} {EXPERIENCE_LABELS.get(e.experience, '')}{inferred}")
        if e.summary:
            parts.append(Truncator(e.summary).chars(40))
        options.append((e.pk, " · ".join(parts)))
    return options

"""Recovery and care cases, the playbooks that shape them, and their history."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from accounts.models import ApiKey, Location, Organization, OrgScopedQuerySet, Role
from cxcore.models import Customer, Episode
from recovery.vocabulary import CareReason, CaseKind, CaseStatus, Outcome, Severity

__all__ = [
    "CareReason",
    "CaseKind",
    "CaseStatus",
    "Outcome",
    "Severity",
]  # the vocabulary, where models are


class PlaybookQuerySet(OrgScopedQuerySet):
    def active(self) -> PlaybookQuerySet:
        return self.filter(is_active=True)


class Playbook(models.Model):
    """What to do about a kind of bad experience. The first active match by position wins."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="playbooks"
    )
    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    case_kind = models.CharField(max_length=10, choices=CaseKind.choices, default=CaseKind.RECOVERY)
    # Match conditions; an empty one matches anything.
    match_touchpoints = models.JSONField(default=list, blank=True)
    match_third_party = models.BooleanField(
        default=False, help_text="Only when a touchpoint run by a partner was involved."
    )
    match_max_experience = models.SmallIntegerField(
        null=True, blank=True, help_text="Only when the worst experience is at most this."
    )
    match_kinds = models.JSONField(default=list, blank=True)
    match_standing = models.JSONField(default=list, blank=True)
    # What staff should do: short texts with placeholders (recovery.vocabulary.Placeholder).
    actions = models.JSONField(default=list, blank=True)
    ack_sla = models.DurationField(default=timedelta(hours=4))
    resolve_sla = models.DurationField(default=timedelta(days=2))
    escalate_to = models.CharField(max_length=10, choices=Role.choices, default=Role.MANAGER)
    show_at_visit = models.BooleanField(default=True)
    # An action experiment (issue 16): while two or more variants are active and this is
    # unset, each case the playbook opens draws one at random. Ending it keeps one variant,
    # whose actions become the playbook's.
    experiment_ended_at = models.DateTimeField(null=True, blank=True)
    kept_variant = models.ForeignKey(
        "PlaybookVariant", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = PlaybookQuerySet.as_manager()

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class PlaybookVariantQuerySet(OrgScopedQuerySet):
    def active(self) -> PlaybookVariantQuerySet:
        return self.filter(is_active=True)


class PlaybookVariant(models.Model):
    """Alternative actions for a playbook, drawn at random per case to learn which works."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=100)
    # The same shape and placeholders as Playbook.actions: a list of short texts.
    actions = models.JSONField(default=list, blank=True)
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = PlaybookVariantQuerySet.as_manager()

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class RecoveryCaseQuerySet(OrgScopedQuerySet):
    def open(self) -> RecoveryCaseQuerySet:
        return self.filter(status=CaseStatus.OPEN)

    def worked(self) -> RecoveryCaseQuerySet:
        """Cases staff work: all but the held-out care cases (recorded, never shown)."""
        return self.filter(held_out=False)

    def shown_not_acted_on(self) -> RecoveryCaseQuerySet:
        """Open cases shown at a till with no action by anyone since (RecoveryCase's twin)."""
        return self.open().filter(
            Q(last_shown_at__isnull=False)
            & (Q(last_acted_at__isnull=True) | Q(last_acted_at__lt=F("last_shown_at")))
        )

    def overdue(self, now: datetime) -> RecoveryCaseQuerySet:
        """Open cases past their next deadline (the SQL twin of RecoveryCase.next_deadline)."""
        return self.open().filter(
            Q(acknowledged_at__isnull=True, ack_due_at__lt=now)
            | Q(acknowledged_at__isnull=False, due_at__lt=now)
        )


class RecoveryCase(models.Model):
    """An open loop with a customer: a bad experience to recover (or a regular to call)."""

    # case_queue leads with organization and serves its lookups.
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="cases")
    kind = models.CharField(max_length=10, choices=CaseKind.choices)
    status = models.CharField(max_length=10, choices=CaseStatus.choices, default=CaseStatus.OPEN)
    severity = models.PositiveSmallIntegerField(choices=Severity.choices, default=Severity.MEDIUM)
    playbook = models.ForeignKey(
        Playbook, on_delete=models.SET_NULL, null=True, blank=True, related_name="cases"
    )
    location = models.ForeignKey(
        Location, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    touchpoints = models.JSONField(default=list, blank=True)
    worst_experience = models.SmallIntegerField(null=True, blank=True)
    show_at_visit = models.BooleanField(default=True)
    triggers = models.ManyToManyField(Episode, through="CaseTrigger", related_name="cases")

    opened_at = models.DateTimeField()
    ack_due_at = models.DateTimeField()
    due_at = models.DateTimeField()
    # When the escalation sweep must look at it: the next SLA it can miss (None once escalated
    # or closed). A partial index serves that sweep.
    escalate_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # When a second bad experience after a recovery last reopened it ("Second time" at the till).
    reopened_at = models.DateTimeField(null=True, blank=True)
    # The last time a prompt for it was shown at a till, and where: repeats within a few
    # minutes at the same place (a polling POS) are one showing in the history.
    last_shown_at = models.DateTimeField(null=True, blank=True)
    last_shown_location = models.ForeignKey(
        Location, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The last time anyone acted on it (acknowledged, not now, resolved, dismissed): a showing
    # after that, with nothing since, is "shown, not acted on".
    last_acted_at = models.DateTimeField(null=True, blank=True)
    # Set once the escalation email went out (it waits for the end of quiet hours).
    escalation_notified_at = models.DateTimeField(null=True, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_episode = models.ForeignKey(
        Episode, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismiss_reason = models.CharField(max_length=500, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Measured later: did the customer come back, and was the next experience good?
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)
    # Which cohort the outcome counts in: followed up (resolved) or not (dismissed, or still
    # open when the window ended). Comparing the two is the lift recovery brings.
    outcome_followed_up = models.BooleanField(null=True, blank=True)
    outcome_due_at = models.DateTimeField(null=True, blank=True)
    outcome_at = models.DateTimeField(null=True, blank=True)
    outcome_episode = models.ForeignKey(
        Episode, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Issue 16, the evidence. A held-out care case is recorded and measured like any other but
    # never shown, prompted or notified: the control group that says whether care works.
    # Recovery cases are never held out.
    held_out = models.BooleanField(default=False)
    # The seed of the case's draws (held out or not, which variant): random.Random(draw_seed)
    # replays them.
    draw_seed = models.BigIntegerField(null=True, blank=True)
    # The holdout share (percent) in force at the draw: replaying the draw needs it, and only
    # cases drawn with one above 0 are in the holdout comparison.
    holdout_share = models.PositiveSmallIntegerField(null=True, blank=True)
    variant = models.ForeignKey(
        PlaybookVariant, on_delete=models.SET_NULL, null=True, blank=True, related_name="cases"
    )
    care_reason = models.CharField(max_length=12, choices=CareReason.choices, blank=True)
    # The one line a care case explains itself with ("Mon/Wed/Fri for 8 months; 12 days
    # absent, 4x her rhythm").
    why_now = models.CharField(max_length=200, blank=True)

    objects = RecoveryCaseQuerySet.as_manager()

    class Meta:
        ordering = ["-severity", "opened_at", "id"]
        constraints = [
            # Invariant 2: at most one open case of each kind per customer, whatever races.
            models.UniqueConstraint(
                fields=["customer", "kind"],
                condition=Q(status="open"),
                name="recovery_case_one_open_per_kind",
            ),
        ]
        indexes = [
            # The owner queue: open cases, most severe and oldest first (a true keyset).
            models.Index(
                fields=["organization", "status", "-severity", "opened_at", "id"],
                name="case_queue",
            ),
            models.Index(
                fields=["escalate_at"],
                condition=Q(escalate_at__isnull=False),
                name="case_escalation_due",
            ),
            models.Index(
                fields=["outcome_due_at"],
                condition=Q(outcome_due_at__isnull=False),
                name="case_outcome_due",
            ),
            # Escalations still to be emailed; a case closed meanwhile is never emailed and
            # leaves the index.
            models.Index(
                fields=["escalated_at"],
                condition=Q(
                    escalated_at__isnull=False,
                    escalation_notified_at__isnull=True,
                    status="open",
                ),
                name="case_escalation_to_notify",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} case #{self.pk} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status == CaseStatus.OPEN

    def restart_outcome(self, *, due) -> None:
        """Forget a measured outcome; measure again once `due` (or never, with None)."""
        self.outcome = ""
        self.outcome_at = None
        self.outcome_episode = None
        self.outcome_followed_up = None
        self.outcome_due_at = due

    @property
    def next_deadline(self) -> datetime:
        """The next SLA the case can miss: acknowledgement, then resolution."""
        return self.due_at if self.acknowledged_at else self.ack_due_at

    @property
    def is_shown_not_acted_on(self) -> bool:
        return (
            self.is_open
            and self.last_shown_at is not None
            and (self.last_acted_at is None or self.last_acted_at < self.last_shown_at)
        )

    def is_overdue(self, now: datetime) -> bool:
        return self.is_open and now > self.next_deadline


class CaseTrigger(models.Model):
    # case_trigger_once (case, episode) serves the case's lookups.
    case = models.ForeignKey(
        RecoveryCase, on_delete=models.CASCADE, related_name="trigger_links", db_index=False
    )
    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "episode"], name="case_trigger_once")
        ]

    def __str__(self) -> str:
        return f"episode {self.episode_id} on case {self.case_id}"


class CaseAction(models.Model):
    """A suggested action, rendered from the playbook for this customer."""

    case = models.ForeignKey(RecoveryCase, on_delete=models.CASCADE, related_name="actions")
    position = models.PositiveSmallIntegerField()
    text = models.CharField(max_length=300)
    taken_at = models.DateTimeField(null=True, blank=True)
    # When it was suggested: a reopened case offers the actions for its new deviation, and
    # those suggested before the reopening are history.
    added_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.text


class CaseEventType(models.TextChoices):
    OPENED = "opened", "Opened"
    SHOWN = "shown", "Shown at a visit"
    NOT_NOW = "not_now", "Not now"
    ASSIGNED = "assigned", "Assigned"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    ESCALATED = "escalated", "Escalated"
    DEVIATION = "deviation", "Another bad experience"
    RESOLVED = "resolved", "Resolved"
    DISMISSED = "dismissed", "Dismissed"
    REOPENED = "reopened", "Reopened"
    OUTCOME = "outcome", "Outcome measured"
    REMINDER = "reminder", "Booked to come back"


class CaseEvent(models.Model):
    """The case history: one row per event, written only through recovery.events."""

    case = models.ForeignKey(RecoveryCase, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=15, choices=CaseEventType.choices)
    at = models.DateTimeField()
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    location = models.ForeignKey(
        Location, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.type} at {self.at:%Y-%m-%d %H:%M}"


class CaseReminder(models.Model):
    """A customer with an open case booked to come back: the case was made due and someone
    told, once per case and booking (recovery.reminders)."""

    case = models.ForeignKey(RecoveryCase, on_delete=models.CASCADE, related_name="reminders")
    # The reservation episode (cleared if the episode is deleted; the reminder stays).
    episode = models.ForeignKey(
        Episode, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The booking, normalised (where and what it says): the same booking logged twice, or a
    # replay, is one reminder.
    booking_key = models.CharField(max_length=300)
    booking = models.CharField(max_length=200, blank=True)
    # What the email and the history say: "Dan — order never rung in · 6 days ago,
    # unacknowledged — booked Sat 19:00 for 2".
    line = models.CharField(max_length=300, blank=True)
    location = models.ForeignKey(
        Location, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    # Set once the email is claimed (it waits for the end of quiet hours where they booked).
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["case", "booking_key"], name="case_reminder_once_per_booking"
            )
        ]
        indexes = [
            # Reminders still to be emailed: the few waiting, not every one ever sent.
            models.Index(
                fields=["created_at"],
                condition=Q(notified_at__isnull=True),
                name="case_reminder_to_notify",
            )
        ]

    def __str__(self) -> str:
        return f"reminder for case {self.case_id}: {self.booking}"


class SweepRun(models.Model):
    """When each periodic sweep last ran to its end: /readyz reports how long ago."""

    name = models.CharField(primary_key=True, max_length=40)
    finished_at = models.DateTimeField()
    result = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} sweep finished {self.finished_at:%Y-%m-%d %H:%M}"

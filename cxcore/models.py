"""The narrative: customers, their identifiers, and the episodes of their story."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import ApiKey, Location, Organization
from accounts.tenancy import OrgScopedQuerySet
from cxcore.vocabulary import (  # noqa: F401  (re-exported: the models' own vocabulary)
    EXPERIENCE_LABELS,
    FOLLOW_UP_KINDS,
    VISIT_KINDS,
    EpisodeKind,
    ExperienceSource,
    IdentifierKind,
    RatingScale,
    Source,
    Touchpoint,
)


class MarketingConsent(models.TextChoices):
    """Whether the customer agreed to marketing email; "unknown" until a source says."""

    YES = "yes", "Yes"
    NO = "no", "No"
    UNKNOWN = "unknown", "Unknown"


class Customer(models.Model):
    """A person known to one organization, with the narrative state kept on the row.

    The state fields are maintained by `cxcore.services.record_episode` in the same transaction
    as each episode, and can be recomputed by `rebuild_narrative` (they must always agree).
    """

    # customer_recently_seen leads with organization: every non-HOT update wrote a second entry.
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="customers", db_index=False
    )
    name = models.CharField(max_length=200, blank=True)
    notes = models.TextField(
        blank=True, max_length=2000, help_text="Staff notes: allergies, preferred name, …"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Narrative state: derived from the episodes, never edited by hand.
    first_seen_at = models.DateTimeField(null=True, blank=True)
    first_visit_at = models.DateTimeField(null=True, blank=True)
    last_visit_at = models.DateTimeField(null=True, blank=True)
    visit_count = models.PositiveIntegerField(default=0)
    total_spend = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    episode_count = models.PositiveIntegerField(default=0)
    last_experience = models.SmallIntegerField(null=True, blank=True)
    last_experience_at = models.DateTimeField(null=True, blank=True)
    last_experience_episode = models.ForeignKey(
        "Episode", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_negative_at = models.DateTimeField(null=True, blank=True)
    last_follow_up_at = models.DateTimeField(null=True, blank=True)
    usual_order = models.CharField(max_length=200, blank=True)

    # Marketing-email consent, with where it came from ("import", …) and when it was given.
    marketing_email_consent = models.CharField(
        max_length=8, choices=MarketingConsent.choices, default=MarketingConsent.UNKNOWN
    )
    marketing_email_consent_source = models.CharField(max_length=32, blank=True)
    marketing_email_consent_at = models.DateTimeField(null=True, blank=True)

    # Due times: when the sweep must look at this customer (cxcore.rules.due_times), kept
    # current by every write in its own transaction.
    recovery_due_at = models.DateTimeField(null=True, blank=True)
    care_due_at = models.DateTimeField(null=True, blank=True)
    # Marks the recovery app keeps on the row about this customer's cases (rules.CaseMarks).
    recovery_case_open = models.BooleanField(default=False)
    recovery_handled_until = models.DateTimeField(null=True, blank=True)
    recovery_resolved_at = models.DateTimeField(null=True, blank=True)
    care_case_open = models.BooleanField(default=False)
    care_handled_until = models.DateTimeField(null=True, blank=True)
    drift_checked_until = models.DateTimeField(null=True, blank=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-last_visit_at", "-id"]
        indexes = [
            # "Recently seen" lists and search results, newest visit first, per organization.
            models.Index(
                fields=["organization", "-last_visit_at", "-id"], name="customer_recently_seen"
            ),
            # The sweeps: only customers with a due time are in these indexes, so finding
            # what is due costs what is due, not what exists.
            models.Index(
                fields=["recovery_due_at"],
                condition=Q(recovery_due_at__isnull=False),
                name="customer_recovery_due",
            ),
            models.Index(
                fields=["care_due_at"],
                condition=Q(care_due_at__isnull=False),
                name="customer_care_due",
            ),
        ]

    def __str__(self) -> str:
        return self.name or f"Customer #{self.pk}"

    @property
    def display_name(self) -> str:
        return self.name or "Unnamed customer"

    @property
    def last_experience_label(self) -> str:
        return (
            EXPERIENCE_LABELS.get(self.last_experience, "")
            if self.last_experience is not None
            else ""
        )


class Identifier(models.Model):
    """A way to recognise a customer; the value is normalised (E.164 phone, lower-case email)."""

    # No index of its own: the unique (organization, kind, value) serves the organization's
    # lookups. A second one on the organization alone let the planner, for an organization
    # young at the last ANALYZE (a cafe's first import), probe by it and filter every
    # identifier of the organization per lookup.
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identifiers")
    kind = models.CharField(max_length=10, choices=IdentifierKind.choices)
    value = models.CharField(max_length=254)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["kind", "value"]
        constraints = [
            # Serves identification at the till, and makes two concurrent creations of the same
            # phone number resolve to one customer.
            models.UniqueConstraint(
                fields=["organization", "kind", "value"], name="identifier_unique_per_org"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class Episode(models.Model):
    """One interaction in a customer's narrative. Written only through `record_episode`."""

    # Every write pays for each index: organization and customer lead the composite indexes
    # below, which serve their lookups and cascades, so neither has one of its own.
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="episodes", db_index=False
    )
    location = models.ForeignKey(
        Location, on_delete=models.SET_NULL, null=True, blank=True, related_name="episodes"
    )
    kind = models.CharField(max_length=12, choices=EpisodeKind.choices)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.API)
    external_id = models.CharField(max_length=128, blank=True, default="")
    summary = models.TextField(blank=True, default="", max_length=4000)
    # [{"code": "wait", "third_party": false}, …] from the Touchpoint vocabulary.
    touchpoints = models.JSONField(default=list, blank=True)
    # [{"name": "Almond-milk latte", "quantity": 1, "price": "3.40"}, …]
    items = models.JSONField(default=list, blank=True)
    experience = models.SmallIntegerField(null=True, blank=True)
    experience_source = models.CharField(
        max_length=10, choices=ExperienceSource.choices, blank=True, default=""
    )
    rating_scale = models.CharField(
        max_length=8, choices=RatingScale.choices, blank=True, default=""
    )
    rating_value = models.SmallIntegerField(null=True, blank=True)
    # Indexed where set (the partial indexes below): imports and connectors write no author.
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    author_api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # A user or key deleted sets its episodes' author to NULL: found by these.
            models.Index(
                fields=["author_user"],
                name="episode_author_user",
                condition=models.Q(author_user__isnull=False),
            ),
            models.Index(
                fields=["author_api_key"],
                name="episode_author_api_key",
                condition=models.Q(author_api_key__isnull=False),
            ),
            # The timeline and the sidebar: a customer's newest episodes, keyset-paged.
            models.Index(
                fields=["customer", "-occurred_at", "-id"], name="episode_customer_timeline"
            ),
            models.Index(fields=["organization", "occurred_at"], name="episode_org_occurred"),
            # Insights read a period's negative experiences: ~5% of the rows, so a partial
            # index keeps a month of a large chain to a few thousand entries, not 400k.
            models.Index(
                fields=["organization", "occurred_at"],
                name="episode_negative_org_occurred",
                condition=models.Q(experience__lt=0),
            ),
            models.Index(
                fields=["location", "occurred_at"],
                name="episode_negative_location",
                condition=models.Q(experience__lt=0),
            ),
        ]
        constraints = [
            # The natural backstop against a POS retrying without an idempotency key.
            models.UniqueConstraint(
                fields=["organization", "source", "external_id"],
                condition=~Q(external_id=""),
                name="episode_external_id_unique_per_org_source",
            ),
            models.CheckConstraint(
                condition=Q(experience__isnull=True) | Q(experience__gte=-2, experience__lte=2),
                name="episode_experience_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.customer_id} at {self.occurred_at:%Y-%m-%d %H:%M}"

    @property
    def is_negative(self) -> bool:
        return self.experience is not None and self.experience < 0

    @property
    def author_label(self) -> str:
        if self.author_user is not None:  # by their display name, as every page names people
            return self.author_user.display_name
        # A null foreign key reads as None without a query.
        if self.author_api_key is not None:
            return self.author_api_key.name
        return self.get_source_display()


class ExperienceCorrection(models.Model):
    """A staff member's correction of an episode's experience, kept for the record."""

    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="corrections")
    previous_experience = models.SmallIntegerField(null=True, blank=True)
    previous_source = models.CharField(max_length=10, blank=True)
    experience = models.SmallIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    corrected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    corrected_by_api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    corrected_at = models.DateTimeField()

    class Meta:
        ordering = ["-corrected_at", "-id"]

    def __str__(self) -> str:
        return f"{self.previous_experience} → {self.experience} on episode {self.episode_id}"


class IdempotencyRecord(models.Model):
    """The first response to an `Idempotency-Key`, stored in the same transaction as its effect.

    A concurrent request with the same key blocks on the unique index until the first commits,
    then replays this response: never a second episode.
    """

    scope = models.CharField(max_length=40)  # "key:<api key id>" or "user:<user id>"
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "key"], name="idempotency_key_unique_per_scope"
            )
        ]

    def __str__(self) -> str:
        return f"{self.scope}/{self.key}"


class Erasure(models.Model):
    """That a customer's personal data was erased, when, by whom and why: the record of the
    erasure, holding nothing of the person (cxcore.privacy.erase_customer writes it).

    `customer_id` is a plain number, not a foreign key: the record must outlive the customer
    row (a merge deletes a duplicate) and must not join back to anything personal.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    customer_id = models.BigIntegerField()
    erased_at = models.DateTimeField()
    by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    by_api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # What staff typed; the form and the API ask for no personal data here.
    reason = models.CharField(max_length=500)
    # How many rows of each kind were cleared ({"identifiers": 4, "episodes": 12, …}).
    cleared = models.JSONField(default=dict, blank=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-erased_at", "-id"]
        indexes = [
            # An export lists the erasures of one customer.
            models.Index(fields=["organization", "customer_id"], name="erasure_org_customer"),
        ]

    def __str__(self) -> str:
        return f"erasure of customer #{self.customer_id} at {self.erased_at:%Y-%m-%d %H:%M}"


class ReadAction(models.TextChoices):
    """Where a customer's data was read: the screen or endpoint that showed it."""

    PAGE = "page", "Customer page"
    DETAIL = "detail", "Customer (API)"
    TIMELINE = "timeline", "Timeline"
    SIDEBAR = "sidebar", "Till sidebar"
    SEARCH = "search", "Search results"
    EXPORT = "export", "Export"


class ActorKind(models.TextChoices):
    USER = "user", "Staff member"
    API_KEY = "api_key", "API key"


class ReadAudit(models.Model):
    """One read of customers' data: who (a member or an API key, by id), which customers (by
    id), where, when, in which request. Written by `cxcore.audit.record_read`, one INSERT per
    request, and holding no personal data, so it outlives an erasure: it is the proof of who
    looked, and it names nobody.

    The actor is a kind and a plain id, not a foreign key: the record must outlive a deleted
    member or key, and a foreign key would cost the insert a constraint check per row.
    `customer_ids` is a JSON list (the embedded SQLite has no arrays); on PostgreSQL a GIN
    index serves "reads of this customer" (migration 0004).
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    actor_kind = models.CharField(max_length=8, choices=ActorKind.choices)
    actor_id = models.BigIntegerField()
    action = models.CharField(max_length=10, choices=ReadAction.choices)
    customer_ids = models.JSONField(default=list)
    request_id = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField()

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # The owners' audit, newest first, keyset-paged per organization.
            models.Index(fields=["organization", "-at", "-id"], name="read_audit_org_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_kind} {self.actor_id} at {self.at:%Y-%m-%d %H:%M}"


class EditKind(models.TextChoices):
    EDIT = "edit", "Edited"
    # An episode written with a name or identifiers the card did not have yet.
    LEARNT = "learnt", "Learnt from an episode"
    MERGE = "merge", "Merged"
    # Notes, names or identifiers a customer import added (imports.services).
    IMPORT = "import", "Imported"


# The customer page's words for the fields of an edit (see CustomerEdit.field_labels).
EDIT_FIELD_LABELS = {
    **{kind.value: str(kind.label).lower() for kind in IdentifierKind},
    "pos_id": "POS id",
    "merged_customer": "duplicate merged in",
}


class CustomerEdit(models.Model):
    """One change to a customer's card (name, notes, identifiers), kept as their history:
    who, when, which fields, and the values before and after.

    The values are personal data: an erasure keeps the row (who changed which fields, when)
    and empties `changes` (cxcore.privacy); retention clears them with the other free text.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="edits")
    kind = models.CharField(max_length=12, choices=EditKind.choices, default=EditKind.EDIT)
    at = models.DateTimeField()
    by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    by_api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The names of the fields changed, always kept: ["name", "phone"].
    fields = models.JSONField(default=list)
    # {"name": {"old": "Dan", "new": "Daniel"}, "phone": {"old": null, "new": "+44…"}}
    changes = models.JSONField(default=dict, blank=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # The customer page's "Edited by …" lines, newest first.
            models.Index(fields=["customer", "-at", "-id"], name="customer_edit_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of customer {self.customer_id} at {self.at:%Y-%m-%d %H:%M}"

    @property
    def field_labels(self) -> list[str]:
        """How the page names the fields changed: "phone", "loyalty card", "name"."""
        return [EDIT_FIELD_LABELS.get(name, name.replace("_", " ")) for name in self.fields]

    @property
    def by_label(self) -> str:
        if self.by_user_id:
            return self.by_user.display_name if self.by_user else ""
        if self.by_api_key_id:
            return self.by_api_key.name if self.by_api_key else ""
        return "Comeback"

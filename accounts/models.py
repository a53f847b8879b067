from __future__ import annotations

import hashlib
import hmac
import secrets
import zoneinfo
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

if TYPE_CHECKING:
    from accounts.tenancy import Tenant


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}.")


def validate_country(value: str) -> None:
    import phonenumbers

    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(f"Unknown country code {value!r}; use ISO 3166 alpha-2, e.g. GB.")


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)


_M = TypeVar("_M", bound=models.Model)


class OrgScopedQuerySet(models.QuerySet[_M]):
    """Base queryset for every model that belongs to an organization (see accounts.tenancy)."""

    org_field = "organization"

    def for_org(self, organization: Organization | int) -> Self:
        return self.filter(**{self.org_field: organization})

    def for_tenant(self, tenant: Tenant) -> Self:
        return self.for_org(tenant.organization)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in, by email. `is_staff` means Django-admin access, not a role."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    def __str__(self) -> str:
        return self.email

    def get_short_name(self) -> str:
        return self.name.split(" ")[0] if self.name else self.email

    @property
    def display_name(self) -> str:
        """How pages name a person: their name, else their email."""
        return self.name.strip() or self.email


# The range an organization may keep free text for (`text_retention_days`): a month at least,
# so a case is worked before its text goes; ten years at most.
TEXT_RETENTION_MIN_DAYS, TEXT_RETENTION_MAX_DAYS = 30, 3650


class Organization(models.Model):
    """One business: the tenant. Data never crosses organizations."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    country = models.CharField(
        max_length=2,
        default="GB",
        validators=[validate_country],
        help_text="ISO country used to read phone numbers written without a +country prefix.",
    )
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    recovery_grace_period = models.DurationField(
        default=timedelta(hours=2),
        validators=[MinValueValidator(timedelta(0)), MaxValueValidator(timedelta(days=30))],
        help_text="Time for on-the-spot recovery before a negative experience opens a case.",
    )
    recovery_outcome_window = models.DurationField(
        default=timedelta(days=30),
        validators=[MinValueValidator(timedelta(days=1)), MaxValueValidator(timedelta(days=365))],
        help_text="How long after a recovery we wait for the customer to come back.",
    )
    care_min_visits = models.PositiveSmallIntegerField(
        default=5, help_text="Visits before a customer counts as a regular for care cases."
    )
    care_gap_factor = models.DecimalField(
        max_digits=4,
        decimal_places=1,
        default=3,
        help_text="A regular is lapsing after this many times their usual gap between visits.",
    )
    quiet_hours_start = models.PositiveSmallIntegerField(
        default=22,
        validators=[MaxValueValidator(23)],
        help_text="Local hour from which escalation emails wait until morning.",
    )
    quiet_hours_end = models.PositiveSmallIntegerField(
        default=7, validators=[MaxValueValidator(23)]
    )
    pos_embed_origins = models.TextField(
        blank=True,
        help_text="Origins allowed to embed the till sidebar in an iframe, one per line "
        "(e.g. https://pos.example.com). Empty: no embedding.",
    )
    high_spender_spend = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=500,
        help_text="Total spend from which a customer counts as a high spender for playbooks.",
    )
    text_retention_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[
            MinValueValidator(TEXT_RETENTION_MIN_DAYS),
            MaxValueValidator(TEXT_RETENTION_MAX_DAYS),
        ],
        help_text="Free text (episode summaries, correction reasons, the values of customer "
        "edits) older than this many days is cleared nightly; counts and insights stay. "
        f"Empty: kept (the default). {TEXT_RETENTION_MIN_DAYS}–{TEXT_RETENTION_MAX_DAYS}.",
    )
    # Issue 16: the evidence that care works (a randomised holdout) and the drift rule.
    care_holdout_share = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(0), MaxValueValidator(50)],
        help_text="Percent of lapsing regulars' care cases held out (recorded, not shown, no "
        "outreach) to measure whether care works. 0 turns it off.",
    )
    drift_window = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(2), MaxValueValidator(10)],
        help_text="Drift looks at a regular's last this many experiences that carry one (2–10).",
    )
    drift_drop = models.PositiveSmallIntegerField(
        default=2,
        # With no negative among them, the longest slide is +2 → 0: more would never fire.
        validators=[MinValueValidator(1), MaxValueValidator(2)],
        help_text="A regular is drifting when those experiences slide at least this far, "
        "first to last, on the −2..+2 scale, with no negative among them (1–2).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Location(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="locations"
    )
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    # An archived location keeps its history and takes no new episodes.
    is_active = models.BooleanField(default=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "slug"], name="location_slug_unique_per_org"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MANAGER = "manager", "Manager"
    STAFF = "staff", "Staff"


class Membership(models.Model):
    """A user's role in one organization. Managers and staff may be limited to locations."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)
    locations = models.ManyToManyField(
        Location,
        blank=True,
        related_name="memberships",
        help_text="Empty means every location of the organization.",
    )
    daily_digest = models.BooleanField(
        default=False, help_text="Email a morning summary of the recovery queue (opt-in)."
    )
    # The local day of the last digest sent: once a day, whatever runs twice.
    digest_sent_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # A deactivated member keeps their history but reaches nothing of the organization: the
    # tenant is read from this row on every request, so their sessions end at once.
    is_active = models.BooleanField(default=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    # The personal till PIN (4–6 digits, hashed like a password) used on paired devices.
    pin_hash = models.CharField(max_length=128, blank=True)
    pin_failures = models.PositiveSmallIntegerField(default=0)
    pin_locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"], name="membership_one_per_user_and_org"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} – {self.role} at {self.organization}"


class ApiKeyQuerySet(OrgScopedQuerySet["ApiKey"]):
    def active(self) -> Self:
        return self.filter(revoked_at__isnull=True)


API_KEY_PREFIX = "cbk"


def hash_api_key(raw_key: str) -> str:
    # The secret is 256 random bits, so a fast hash is enough; a salt adds nothing here.
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKey(models.Model):
    """A POS integration's credential. Only the hash is stored; the full key is shown once.

    The key reads `cbk_<prefix>_<secret>`; the prefix is the lookup index and is safe to show.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    location = models.ForeignKey(
        Location,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="api_keys",
        help_text="When set, the key can only write at this location.",
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    hashed_key = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({API_KEY_PREFIX}_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def display_prefix(self) -> str:
        return f"{API_KEY_PREFIX}_{self.prefix}_"

    @staticmethod
    def generate() -> tuple[str, str]:
        prefix = secrets.token_hex(4)
        return prefix, f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"

    def matches(self, raw_key: str) -> bool:
        return hmac.compare_digest(self.hashed_key, hash_api_key(raw_key))


# --- Self-serve: the team, its history and the till's paired devices ---------------------------

INVITATION_DAYS = 7
TOKEN_PREFIX_LENGTH = 8


def hash_token(raw: str) -> str:
    """Invitation, pairing and device tokens: 256 random bits, so a plain SHA-256 suffices."""
    return hashlib.sha256(raw.encode()).hexdigest()


class Invitation(models.Model):
    """A single-use link that makes its holder a member with the given role and limits."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)
    locations = models.ManyToManyField(
        Location, blank=True, related_name="+", help_text="Empty means every location."
    )
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "email"], name="invitation_org_email")]

    def __str__(self) -> str:
        return f"Invitation of {self.email} as {self.role}"

    @property
    def is_pending(self) -> bool:
        return (
            self.accepted_at is None
            and self.revoked_at is None
            and self.expires_at > timezone.now()
        )


class TeamAction(models.TextChoices):
    SIGNED_UP = "signed_up", "Signed up"
    SETTINGS_CHANGED = "settings_changed", "Changed the settings"
    LOCATION_ADDED = "location_added", "Added a location"
    LOCATION_CHANGED = "location_changed", "Changed a location"
    LOCATION_ARCHIVED = "location_archived", "Archived a location"
    LOCATION_RESTORED = "location_restored", "Restored a location"
    INVITED = "invited", "Invited"
    INVITE_RESENT = "invite_resent", "Resent an invitation"
    INVITE_REVOKED = "invite_revoked", "Revoked an invitation"
    JOINED = "joined", "Joined"
    ROLE_CHANGED = "role_changed", "Changed a role"
    LOCATIONS_CHANGED = "locations_changed", "Changed location limits"
    DEACTIVATED = "deactivated", "Deactivated a member"
    REACTIVATED = "reactivated", "Reactivated a member"
    PIN_SET = "pin_set", "Set a till PIN"
    PIN_RESET = "pin_reset", "Reset a till PIN"
    PIN_LOCKED = "pin_locked", "Till PIN locked"
    DEVICE_PAIRED = "device_paired", "Paired a till"
    DEVICE_REVOKED = "device_revoked", "Unpaired a till"
    IMPORTED = "imported", "Imported"
    IMPORT_UNDONE = "import_undone", "Undid an import"


class TeamEvent(models.Model):
    """The team history: who changed what about the organization, its people and its tills.

    `subject_label` keeps who or what was concerned as it read then (an email, a location's
    name), so the history still reads after the user or location is gone.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="team_events"
    )
    actor = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=24, choices=TeamAction.choices)
    subject = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    subject_label = models.CharField(max_length=254, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-created_at", "-id"], name="team_event_recent")
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.subject_label}".strip()


class Device(models.Model):
    """A till paired to a location: a shared tablet where staff switch user by PIN.

    An owner or manager creates a pairing link (short-lived, single use); opening it on the
    tablet while signed in sets a long-lived device cookie, of which only the hash is kept.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="devices")
    name = models.CharField(max_length=100)
    pairing_token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    pairing_expires_at = models.DateTimeField(null=True, blank=True)
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    paired_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["location__name", "name"]

    def __str__(self) -> str:
        return f"{self.name} at {self.location}"

    @property
    def is_paired(self) -> bool:
        return self.paired_at is not None and self.revoked_at is None

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
    is_active = models.BooleanField(default=True)
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

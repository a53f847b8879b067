from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import ApiKey, Location, Membership, Organization, User
from accounts.validators import embed_origins, validate_strict_email


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "is_active"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password", "name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]

    def get_form(self, request: Any, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        # A member's email strictly (accounts.validators): one @, no control or bidi character.
        form = super().get_form(request, obj, change=change, **kwargs)
        email = form.base_fields.get("email")
        if email is not None:
            email.validators = [*email.validators, validate_strict_email]
        return form


class LocationInline(admin.TabularInline):
    model = Location
    extra = 0


class OrganizationForm(forms.ModelForm):
    class Meta:
        model = Organization
        # The admin shows every field; naming some here would make it show only those.
        fields = "__all__"  # noqa: DJ007

    def clean_pos_embed_origins(self) -> str:
        # The admin is a write path too: the same rules as the owners' form (a bad origin would
        # reach the till's Content-Security-Policy header).
        return embed_origins(self.cleaned_data["pos_embed_origins"])


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    form = OrganizationForm
    list_display = ["name", "slug", "country", "time_zone", "recovery_grace_period"]
    search_fields = ["name", "slug"]
    inlines = [LocationInline]


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "organization", "time_zone", "is_active"]
    list_filter = ["organization"]


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["user", "organization", "role", "locations"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        org = cleaned.get("organization")
        stray = [
            loc for loc in cleaned.get("locations") or [] if org and loc.organization_id != org.pk
        ]
        if stray:
            raise forms.ValidationError({"locations": "Locations must belong to the organization."})
        return cleaned


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    form = MembershipForm
    list_display = ["user", "organization", "role"]
    list_filter = ["role", "organization"]
    filter_horizontal = ["locations"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created with `create_api_key` or on the API keys page, where the secret is shown
    once; the admin only lists and revokes them."""

    list_display = [
        "name",
        "display_prefix",
        "organization",
        "location",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["organization"]
    readonly_fields = ["prefix", "hashed_key", "created_at", "last_used_at", "created_by"]

    def has_add_permission(self, request) -> bool:
        return False

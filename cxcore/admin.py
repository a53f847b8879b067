from django.contrib import admin

from cxcore.models import (
    Customer,
    Episode,
    Erasure,
    ExperienceCorrection,
    IdempotencyRecord,
    Identifier,
)
from cxcore.rules import CaseMarks
from cxcore.services import update_customer


class ReadOnlyAdmin:
    """Rows that only services may write (they keep the narrative state and the tenant
    boundaries); the admin shows them."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class IdentifierInline(ReadOnlyAdmin, admin.TabularInline):
    model = Identifier
    extra = 0
    fields = ["kind", "value"]


NARRATIVE_FIELDS = [
    "first_seen_at",
    "first_visit_at",
    "last_visit_at",
    "visit_count",
    "episode_count",
    "total_spend",
    "last_experience",
    "last_experience_at",
    "last_experience_episode",
    "last_negative_at",
    "last_follow_up_at",
    "usual_order",
    "recovery_due_at",
    "care_due_at",
    *CaseMarks.field_names(),  # listed once, in cxcore.rules
]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization", "visit_count", "last_visit_at", "last_experience"]
    list_filter = ["organization"]
    search_fields = ["name", "identifiers__value"]
    inlines = [IdentifierInline]

    def get_readonly_fields(self, request, obj=None):
        # A customer never moves to another organization.
        return [*self.readonly_fields, "organization"] if obj else self.readonly_fields

    def has_add_permission(self, request) -> bool:
        return False  # customers arrive with their identifiers, through the API or pages

    # Only name and notes are edited here; the narrative state, due times and case marks
    # belong to the services (they are kept under the customer's row lock).
    fields = ["organization", "name", "notes", *NARRATIVE_FIELDS]
    readonly_fields = NARRATIVE_FIELDS

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        # The form has set the new values on `obj`; the service reads the old ones from the
        # locked row, so the history says what the admin replaced.
        update_customer(
            customer=obj,
            by_user=request.user,
            **{f: form.cleaned_data[f] for f in ("name", "notes")},
        )
        return None


@admin.register(Identifier)
class IdentifierAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ["kind", "value", "customer", "organization"]
    list_filter = ["kind", "organization"]
    search_fields = ["value"]
    raw_id_fields = ["customer"]


@admin.register(Episode)
class EpisodeAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """Episodes enter the narrative through the API or pages, which keep the customer's state
    current; editing or deleting here would bypass that."""

    list_display = ["occurred_at", "kind", "customer", "location", "experience", "source"]
    list_filter = ["kind", "source", "organization"]
    raw_id_fields = ["customer"]
    date_hierarchy = "occurred_at"


@admin.register(ExperienceCorrection)
class ExperienceCorrectionAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ["episode", "previous_experience", "experience", "corrected_by", "corrected_at"]
    raw_id_fields = ["episode"]


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ["scope", "key", "response_status", "created_at"]
    search_fields = ["key"]


@admin.register(Erasure)
class ErasureAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """The record that a customer's data was erased (cxcore.privacy.erase_customer)."""

    list_display = ["erased_at", "organization", "customer_id", "by_user", "by_api_key", "reason"]
    list_filter = ["organization"]

from django.contrib import admin

from cxcore.models import Customer, Episode, ExperienceCorrection, IdempotencyRecord, Identifier


class IdentifierInline(admin.TabularInline):
    model = Identifier
    extra = 0
    fields = ["kind", "value"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization", "visit_count", "last_visit_at", "last_experience"]
    list_filter = ["organization"]
    search_fields = ["name", "identifiers__value"]
    inlines = [IdentifierInline]
    readonly_fields = [
        "first_seen_at",
        "last_visit_at",
        "visit_count",
        "episode_count",
        "last_experience",
        "last_experience_at",
        "last_experience_episode",
        "last_negative_at",
        "last_follow_up_at",
        "usual_order",
    ]


@admin.register(Identifier)
class IdentifierAdmin(admin.ModelAdmin):
    list_display = ["kind", "value", "customer", "organization"]
    list_filter = ["kind", "organization"]
    search_fields = ["value"]
    raw_id_fields = ["customer"]


@admin.register(Episode)
class EpisodeAdmin(admin.ModelAdmin):
    """Read-only: episodes enter the narrative through the API or pages, which keep the
    customer's state current; editing here would bypass that."""

    list_display = ["occurred_at", "kind", "customer", "location", "experience", "source"]
    list_filter = ["kind", "source", "organization"]
    raw_id_fields = ["customer"]
    date_hierarchy = "occurred_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ExperienceCorrection)
class ExperienceCorrectionAdmin(admin.ModelAdmin):
    list_display = ["episode", "previous_experience", "experience", "corrected_by", "corrected_at"]
    raw_id_fields = ["episode"]


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ["scope", "key", "response_status", "created_at"]
    search_fields = ["key"]

from django.contrib import admin

from recovery.models import CaseAction, CaseEvent, CaseTrigger, Playbook, RecoveryCase


@admin.register(Playbook)
class PlaybookAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "position", "case_kind", "is_active"]
    list_filter = ["organization", "case_kind", "is_active"]
    ordering = ["organization", "position"]


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ActionInline(ReadOnlyInline):
    model = CaseAction
    fields = ["position", "text", "taken_at"]


class TriggerInline(ReadOnlyInline):
    model = CaseTrigger
    fields = ["episode", "added_at"]
    raw_id_fields = ["episode"]


class EventInline(ReadOnlyInline):
    model = CaseEvent
    fields = ["type", "at", "actor_user", "actor_api_key", "data"]


@admin.register(RecoveryCase)
class RecoveryCaseAdmin(admin.ModelAdmin):
    """Cases change through the queue and the API (which keep the customer's marks and the
    history); the admin shows them."""

    list_display = ["__str__", "customer", "kind", "status", "severity", "opened_at", "outcome"]
    list_filter = ["kind", "status", "severity", "organization"]
    raw_id_fields = ["customer"]
    inlines = [TriggerInline, ActionInline, EventInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

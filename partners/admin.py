from django.contrib import admin

from partners.models import Partner, PartnerIncident


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "is_active", "created_at"]
    list_filter = ["organization", "is_active"]
    search_fields = ["name", "contact_name", "contact_email"]


@admin.register(PartnerIncident)
class PartnerIncidentAdmin(admin.ModelAdmin):
    list_display = ["id", "partner", "organization", "status", "occurred_at", "opened_at"]
    list_filter = ["organization", "status"]
    raw_id_fields = ["partner", "customer", "episode", "recovery_case", "location"]
    readonly_fields = ["answered_by", "closed_by"]

"""The admin shows endpoints, events and deliveries; only the services change them (and the
signing secrets are not shown at all: they were shown once, when made or rotated)."""

from django.contrib import admin
from django.db import models

from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent


class ReadOnly:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["url", "organization", "disabled_at", "failing_since", "created_at"]
    list_filter = ["organization"]
    exclude = ["secret", "previous_secret"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # webhooks are https


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["type", "organization", "occurred_at", "uid"]
    list_filter = ["type"]


class AttemptInline(ReadOnly, admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    fields = ["number", "at", "status_code", "error", "duration_ms", "response"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["id", "endpoint", "event", "status", "attempts", "next_attempt_at"]
    list_filter = ["status"]
    raw_id_fields = ["endpoint", "event"]
    inlines = [AttemptInline]

"""What came in, for operators: read-only, since every change goes through the services
(a refund waiting for its payment is found here: episode empty)."""

from typing import Any

from django.contrib import admin

from connectors.models import Check, SquareConnection, SquareEvent, SquarePayment, SquareRefund


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(SquareConnection)
class SquareConnectionAdmin(ReadOnlyAdmin):
    # The signature key stays out of every page: it is what makes a notification trusted.
    fields = ["organization", "token", "locations", "created_by", "created_at", "revoked_at"]
    list_display = ["organization", "created_at", "revoked_at"]


@admin.register(SquareEvent)
class SquareEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "organization", "received_at", "outcome"]
    list_filter = ["type", "outcome"]
    search_fields = ["event_id"]


@admin.register(SquarePayment)
class SquarePaymentAdmin(ReadOnlyAdmin):
    list_display = ["payment_id", "organization", "status", "amount", "occurred_at", "episode"]
    search_fields = ["payment_id"]
    raw_id_fields = ["episode"]


@admin.register(SquareRefund)
class SquareRefundAdmin(ReadOnlyAdmin):
    list_display = ["refund_id", "payment_id", "organization", "status", "episode"]
    list_filter = ["status"]
    search_fields = ["refund_id", "payment_id"]
    raw_id_fields = ["episode"]


@admin.register(Check)
class CheckAdmin(ReadOnlyAdmin):
    list_display = ["external_id", "organization", "created_at", "order_episode"]
    search_fields = ["external_id"]
    raw_id_fields = ["order_episode"]

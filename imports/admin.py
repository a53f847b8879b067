"""The admin shows import batches, read-only: imports run and are undone through the page and
the commands (imports.services, imports.undo), which keep the undo records and the history."""

from django.contrib import admin

from imports.models import ImportBatch


@admin.register(ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):
    list_display = ["file_name", "organization", "kind", "dry_run", "status", "rows_done",
                    "created_at"]  # fmt: skip
    list_filter = ["kind", "status", "dry_run"]
    readonly_fields = [field.name for field in ImportBatch._meta.fields]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

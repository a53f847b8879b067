"""Import batches: one upload of a POS export, its progress, its outcome, and what undo needs.

One `ImportBatch` serves both kinds of import (customers, history). Every object a batch
creates or changes is recorded as one `ImportedObject` row, written set-based beside the change
itself (INSERT … SELECT … RETURNING), so undo can take back exactly what the batch did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Location, Organization
from accounts.tenancy import OrgScopedQuerySet

# How long an import can be undone from the page.
UNDO_DAYS = 30
# The advisory lock (with the organization's id) a customers import holds while it runs.
IMPORT_LOCK = 0x1A7
# The one a history import's write takes for its transaction: one at a time per organization,
# so the episode ids each writes form a range no other import's episodes fall in.
HISTORY_LOCK = 0x1A9


class ImportKind(models.TextChoices):
    CUSTOMERS = "customers", "Customers"
    HISTORY = "history", "History"


class ImportFormat(models.TextChoices):
    SQUARE = "square", "Square customers export"
    GENERIC = "generic", "Other CSV (choose the columns)"
    SQUARE_TRANSACTIONS = "square-transactions", "Square transactions export"
    SQUARE_ITEMS = "square-items", "Square item details export"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    UNDONE = "undone", "Undone"


@dataclass(frozen=True)
class BatchProgress:
    done: int
    total: int
    rows_per_second: float | None
    seconds_left: float | None

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0


class ImportBatch(models.Model):
    """One file brought in (or analysed, when `dry_run`): what, by whom, how far, what came of it.

    Progress is on the row (rows_total, rows_done, started_at) so the page can poll it while a
    worker streams the file; `counts` and `first_rejections` are the summary at the end.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="import_batches"
    )
    location = models.ForeignKey(
        Location, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=ImportKind.choices)
    format = models.CharField(max_length=24, choices=ImportFormat.choices)
    file_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64, blank=True)
    file_size = models.BigIntegerField(default=0)
    # For `generic`: {"CSV header": "field"}; empty for formats matched by header name.
    column_map = models.JSONField(default=dict, blank=True)
    dry_run = models.BooleanField(default=False)
    status = models.CharField(
        max_length=8, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    # {"new": 10, "matched": 3, "phone_only": 1, "pos_id_only": 1, "rejected": 2, "episodes": …}
    counts = models.JSONField(default=dict, blank=True)
    # [{"line": 7, "reason": "Phone '12' is not a phone number."}, …]: the first few, for the page.
    first_rejections = models.JSONField(default=list, blank=True)
    # The stored upload (streamed from there by the worker) and the rejected rows as a CSV.
    upload_path = models.CharField(max_length=500, blank=True)
    rejected_path = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The batches list on the import page, newest first.
            models.Index(fields=["organization", "-created_at", "-id"], name="import_batch_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} import {self.pk} of {self.file_name}"

    @property
    def is_finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED, ImportStatus.UNDONE)

    def progress(self, now: datetime) -> BatchProgress:
        """Rows done, rows per second and the time left, for the page's progress bar."""
        total = max(self.rows_total, self.rows_done)
        if self.started_at is None or self.rows_done == 0:
            return BatchProgress(self.rows_done, total, None, None)
        end = self.finished_at or now
        seconds = max((end - self.started_at).total_seconds(), 0.001)
        rate = self.rows_done / seconds
        left = None if self.is_finished else max(total - self.rows_done, 0) / rate
        return BatchProgress(self.rows_done, total, rate, left)

    def undo_deadline(self) -> datetime | None:
        if self.finished_at is None:
            return None
        return self.finished_at + timedelta(days=UNDO_DAYS)

    def can_undo(self, now: datetime) -> bool:
        deadline = self.undo_deadline()
        return (
            not self.dry_run
            and self.status in (ImportStatus.DONE, ImportStatus.FAILED)
            and deadline is not None
            and now <= deadline
        )


class ImportedKind(models.TextChoices):
    CUSTOMER_CREATED = "customer_created", "Customer created"
    IDENTIFIER_ADDED = "identifier_added", "Identifier added"
    NAME_SET = "name_set", "Name set"
    NOTE_APPENDED = "note_appended", "Note appended"
    CONSENT_SET = "consent_set", "Consent set"
    EPISODE_CREATED = "episode_created", "Episode created"
    # The episodes a history import created, as one row: {"first": id, "last": id} and, on
    # PostgreSQL, {"recorded_at": …}. One row, not a million, keeps the import at its speed.
    EPISODE_RANGE = "episode_range", "Episodes created (an id range)"
    # The customers a chunk of a customers import created, as one row: {"ids": [id, …]}.
    # Older batches have a customer_created row per customer.
    CUSTOMER_LIST = "customer_list", "Customers created (a list)"


class _JSONArrayLength(models.Func):
    """The length of a JSON array (a customer_list row's ids), on both databases."""

    function = "jsonb_array_length"
    output_field = models.IntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, function="json_array_length", **extra)


def customers_created(batch: ImportBatch) -> int:
    """How many customers a batch created, from its undo records: a customer_list row's ids,
    and an older batch's customer_created row each."""
    rows = ImportedObject.objects.filter(batch=batch)
    listed = rows.filter(kind=ImportedKind.CUSTOMER_LIST).aggregate(
        n=models.Sum(_JSONArrayLength("previous__ids"))
    )["n"]
    return rows.filter(kind=ImportedKind.CUSTOMER_CREATED).count() + (listed or 0)


class ImportedObject(models.Model):
    """One thing a batch created or changed, so undo can take it back.

    `customer_id` and `object_id` are plain numbers, not foreign keys: a million rows are written
    with one INSERT … SELECT each chunk, without a constraint check per row, and the record must
    outlive a customer merged away or erased (undo then finds nothing to take back).
    `object_id` is the Identifier's or Episode's id (the customer's own for customer_created,
    null where the change is a field on the customer). `previous` holds what undo restores or
    removes: {"appended": "memo text"} for a note, {"consent": …, "source": …, "at": …} for
    consent, {"name": ""} for a name, {"items": [...]} for items set on an episode. One
    episode_range row stands for all the episodes a history batch created (customer_id 0: it
    names no one customer); older batches have an episode_created row per episode. So does a
    customer_list row for the customers a chunk created.
    """

    # No index of its own: imported_object_batch_kind leads with the batch.
    batch = models.ForeignKey(
        ImportBatch, on_delete=models.CASCADE, related_name="imported", db_index=False
    )
    kind = models.CharField(max_length=16, choices=ImportedKind.choices)
    customer_id = models.BigIntegerField()
    object_id = models.BigIntegerField(null=True, blank=True)
    previous = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            # Undo reads one batch's rows of one kind.
            models.Index(fields=["batch", "kind"], name="imported_object_batch_kind"),
            # "Touched since": has another batch recorded this customer?
            models.Index(fields=["customer_id"], name="imported_object_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id or self.customer_id} in batch {self.batch_id}"

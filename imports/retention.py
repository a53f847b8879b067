"""What an import keeps, and for how long: the files hold personal data.

- An upload waits for its dry run to be confirmed for STALE_UPLOAD; then it is deleted (a real
  run deletes its own once done: imports.tasks).
- A batch's rejected rows stay downloadable while it can be undone (UNDO_DAYS), then go.
- An upload no batch names (its owner left at the column-mapping step) goes after STALE_UPLOAD.
- A batch still queued after REQUEUE_AFTER never reached a worker (the broker was down when
  it was asked): it is asked for again. Running it twice is safe: the run claims the batch.

Only files under IMPORT_UPLOAD_DIR are ever deleted: a file the command was given is the
operator's. Run by the beat (imports.tasks.tidy_imports_task).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from django.utils import timezone

from imports.models import UNDO_DAYS, ImportBatch, ImportStatus
from imports.services import upload_dir
from imports.tasks import enqueue_import

STALE_UPLOAD = timedelta(days=1)
REQUEUE_AFTER = timedelta(minutes=2)


def _ours(path: str) -> Path | None:
    if not path:
        return None
    file = Path(path)
    return file if file.resolve().parent == upload_dir().resolve() else None


def tidy_imports(*, now: datetime | None = None) -> dict[str, list]:
    """What it did: the batches whose upload or rejected rows went, the orphan files removed
    (by name), the batches asked for again."""
    now = now or timezone.now()
    done: dict[str, list] = {"uploads": [], "rejected": [], "orphans": [], "requeued": []}
    in_use = set(
        ImportBatch.objects.filter(
            dry_run=False, status__in=(ImportStatus.QUEUED, ImportStatus.RUNNING)
        ).values_list("upload_path", flat=True)
    )
    for batch in ImportBatch.objects.filter(
        dry_run=True, finished_at__lt=now - STALE_UPLOAD
    ).exclude(upload_path=""):
        if batch.upload_path in in_use:
            continue
        if (file := _ours(batch.upload_path)) is not None:
            file.unlink(missing_ok=True)
        ImportBatch.objects.filter(pk=batch.pk).update(upload_path="")
        done["uploads"].append(batch.pk)
    for batch in ImportBatch.objects.filter(
        finished_at__lt=now - timedelta(days=UNDO_DAYS)
    ).exclude(rejected_path=""):
        if (file := _ours(batch.rejected_path)) is not None:
            file.unlink(missing_ok=True)
        ImportBatch.objects.filter(pk=batch.pk).update(rejected_path="")
        done["rejected"].append(batch.pk)
    named = {
        Path(path).name
        for pair in ImportBatch.objects.values_list("upload_path", "rejected_path")
        for path in pair
        if path
    }
    stale = (now - STALE_UPLOAD).timestamp()
    for file in upload_dir().glob("upload-*.csv"):
        if file.name not in named and file.stat().st_mtime < stale:
            file.unlink(missing_ok=True)
            done["orphans"].append(file.name)
    for pk in ImportBatch.objects.filter(
        status=ImportStatus.QUEUED, created_at__lt=now - REQUEUE_AFTER
    ).values_list("pk", flat=True):
        enqueue_import(pk)
        done["requeued"].append(pk)
    return done

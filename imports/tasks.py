"""The import worker's task: thin, loads the batch by id and runs it; safe to run twice (the
run claims the batch queued → running, so a second delivery returns at once)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from celery import shared_task
from django.db import transaction

from imports.models import ImportBatch, ImportKind

logger = logging.getLogger(__name__)


@shared_task(name="imports.tasks.run_import_batch_task", acks_late=True)
def run_import_batch_task(batch_id: int) -> dict:
    batch = ImportBatch.objects.select_related("organization", "created_by").get(pk=batch_id)
    if batch.kind == ImportKind.HISTORY:
        from imports.history import run_history_batch

        batch = run_history_batch(batch=batch)
    else:
        from imports.services import import_customers

        batch = import_customers(batch=batch)
    if not batch.dry_run:
        _forget_upload(batch.upload_path)
    return {"batch": batch.pk, "status": batch.status, "counts": batch.counts}


def enqueue_import(batch_id: int) -> None:
    """Ask a worker to run the batch once this transaction commits. The request path never
    waits on the broker (DESIGN.md invariant 5): the task is published from a thread, and a
    broker that is down leaves the batch queued, which its page says."""

    def publish() -> None:
        try:
            run_import_batch_task.apply_async(args=[batch_id], retry=False)
        except Exception:
            logger.warning("could not queue import batch %s", batch_id, exc_info=True)

    transaction.on_commit(lambda: threading.Thread(target=publish, daemon=True).start())


def _forget_upload(path: str) -> None:
    """After the real run the page's stored copy is not needed (it holds personal data); a
    file the command was given is the operator's and stays."""
    from imports.services import upload_dir

    stored = Path(path)
    if path and stored.parent.resolve() == upload_dir().resolve():
        stored.unlink(missing_ok=True)


@shared_task(name="imports.tasks.tidy_imports_task")
def tidy_imports_task() -> dict:
    from imports.retention import tidy_imports

    return {name: len(ids) for name, ids in tidy_imports().items()}

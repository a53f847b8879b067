from celery import shared_task

from cxcore.retention import clear_old_text
from cxcore.services import purge_idempotency_records


@shared_task(name="cxcore.tasks.purge_idempotency_keys_task")
def purge_idempotency_keys_task() -> int:
    return purge_idempotency_records()


@shared_task(name="cxcore.tasks.clear_old_text_task")
def clear_old_text_task() -> dict[str, int]:
    """Beat, nightly: free text past each organization's retention setting (cxcore.retention)."""
    return clear_old_text()

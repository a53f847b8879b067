from celery import shared_task

from cxcore.services import purge_idempotency_records


@shared_task(name="cxcore.tasks.purge_idempotency_keys_task")
def purge_idempotency_keys_task() -> int:
    return purge_idempotency_records()

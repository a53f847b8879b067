from celery import shared_task

from recovery.sweep import sweep_recovery


@shared_task(name="recovery.tasks.sweep_recovery_task")
def sweep_recovery_task() -> dict:
    """Beat, every minute. Safe to run twice at once: the batches skip each other's rows."""
    return vars(sweep_recovery())

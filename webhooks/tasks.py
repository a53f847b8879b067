"""Delivery and clean-up tasks: thin, safe to run twice, expiring when periodic."""

from celery import shared_task
from django.db import OperationalError

from webhooks.delivery import deliver_due
from webhooks.retention import purge_old

RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 3}


@shared_task(name="webhooks.tasks.deliver_webhooks_task", **RETRY)
def deliver_webhooks_task() -> dict:
    """Beat every few seconds, and once after a commit that wrote deliveries. Two at once
    share the work (claims skip each other's rows)."""
    return vars(deliver_due())


@shared_task(name="webhooks.tasks.purge_webhook_log_task", **RETRY)
def purge_webhook_log_task() -> dict:
    return purge_old()

"""Periodic tasks: each takes no personal data, calls one service, and is safe to run twice."""

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from recovery.digests import send_daily_digests
from recovery.escalation import escalate_overdue, notify_escalations
from recovery.outcomes import measure_outcomes
from recovery.reconcile import reconcile
from recovery.reminders import notify_reminders, remind_of_reservations
from recovery.sweep import sweep_care, sweep_recovery

# A database hiccup (failover, lock timeout) is retried with backoff; the work is idempotent.
RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 3}


@shared_task(name="recovery.tasks.sweep_recovery_task", **RETRY)
def sweep_recovery_task() -> dict:
    """Beat, every minute. Two at once share the work: batches skip each other's rows."""
    return vars(sweep_recovery(batch_size=settings.SWEEP_BATCH_SIZE))


@shared_task(name="recovery.tasks.sweep_care_task", **RETRY)
def sweep_care_task() -> dict:
    return vars(sweep_care(batch_size=settings.SWEEP_BATCH_SIZE))


@shared_task(name="recovery.tasks.escalate_overdue_task", **RETRY)
def escalate_overdue_task() -> dict:
    return {"escalated": escalate_overdue(), "notified": notify_escalations()}


@shared_task(name="recovery.tasks.remind_reservations_task", **RETRY)
def remind_reservations_task() -> dict:
    """Beat, every minute: reservations of customers with an open case, then the emails."""
    return {"reminded": remind_of_reservations(), "notified": notify_reminders()}


@shared_task(name="recovery.tasks.measure_outcomes_task", **RETRY)
def measure_outcomes_task() -> dict:
    return measure_outcomes()


@shared_task(
    name="recovery.tasks.reconcile_task", time_limit=3 * 3600, soft_time_limit=3 * 3600 - 60
)
def reconcile_task() -> dict:
    """Daily: repair any drift in case marks, narrative state and due times; says how much."""
    return reconcile()


@shared_task(name="recovery.tasks.send_daily_digests_task", **RETRY)
def send_daily_digests_task() -> int:
    return send_daily_digests()

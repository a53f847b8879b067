from celery import shared_task

from cxcore.services import purge_idempotency_records, rebuild_narratives


@shared_task(name="cxcore.tasks.purge_idempotency_keys_task")
def purge_idempotency_keys_task() -> int:
    return purge_idempotency_records()


@shared_task(name="cxcore.tasks.rebuild_narratives_task")
def rebuild_narratives_task(organization_id: int | None = None) -> dict:
    from accounts.models import Organization

    organization = Organization.objects.get(pk=organization_id) if organization_id else None
    checked, repaired = rebuild_narratives(organization=organization)
    return {"checked": checked, "repaired": repaired}

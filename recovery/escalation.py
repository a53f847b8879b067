"""Overdue cases are escalated once; the people to tell get an email outside quiet hours."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Membership, Role
from recovery.events import case_event
from recovery.models import CaseEvent, CaseEventType, CaseStatus, RecoveryCase
from recovery.rules import is_quiet_hour, raised

BATCH = 500


def escalate_overdue(*, now: datetime | None = None, batch_size: int = BATCH) -> int:
    """Escalate open cases past their next SLA. escalate_at is cleared as it happens, so each
    case escalates once; SKIP LOCKED lets two runs share the work."""
    now = now or timezone.now()
    escalated = 0
    while True:
        with transaction.atomic():
            cases = list(
                RecoveryCase.objects.filter(escalate_at__lte=now, status=CaseStatus.OPEN)
                .order_by("escalate_at")
                .select_for_update(skip_locked=True)[:batch_size]
            )
            events: list[CaseEvent] = []
            for case in cases:
                overdue = "acknowledgement" if case.acknowledged_at is None else "resolution"
                case.severity = raised(case.severity)
                case.escalated_at = now
                case.escalate_at = None
                events.append(
                    case_event(
                        case,
                        CaseEventType.ESCALATED,
                        at=now,
                        reason=f"{overdue} overdue",
                        severity=case.severity,
                    )
                )
            RecoveryCase.objects.bulk_update(cases, ["severity", "escalated_at", "escalate_at"])
            CaseEvent.objects.bulk_create(events)
        escalated += len(cases)
        if len(cases) < batch_size:
            return escalated


def notify_escalations(*, now: datetime | None = None, limit: int = 200) -> int:
    """Email the escalation role about escalated cases, unless it is quiet hours where the
    case happened: then the next run after the quiet hours sends it. Nothing waits in the
    broker (no countdown, no ETA)."""
    now = now or timezone.now()
    sent = 0
    with transaction.atomic():
        cases = list(
            RecoveryCase.objects.filter(
                escalated_at__isnull=False, escalation_notified_at__isnull=True
            )
            .select_related("organization", "location", "customer", "playbook")
            .order_by("escalated_at")
            .select_for_update(skip_locked=True, of=("self",))[:limit]
        )
        for case in cases:
            org = case.organization
            tz = ZoneInfo(case.location.time_zone if case.location else org.time_zone)
            if is_quiet_hour(now.astimezone(tz).hour, org.quiet_hours_start, org.quiet_hours_end):
                continue
            recipients = _recipients(case)
            if recipients:
                send_mail(
                    subject=f"Escalated: {case.customer} ({case.get_severity_display()})",
                    message=_message(case),
                    from_email=settings.DEFAULT_FROM_EMAIL,
                    recipient_list=recipients,
                )
                sent += 1
            case.escalation_notified_at = now
            case.save(update_fields=["escalation_notified_at"])
    return sent


def _recipients(case: RecoveryCase) -> list[str]:
    role = case.playbook.escalate_to if case.playbook else Role.MANAGER
    roles = {Role.OWNER} if role == Role.OWNER else {Role.OWNER, Role.MANAGER}
    members = Membership.objects.filter(organization_id=case.organization_id, role__in=roles)
    if case.location_id:
        # Managers limited to other locations are not told; owners always are.
        members = members.filter(
            Q(role=Role.OWNER) | Q(locations__isnull=True) | Q(locations=case.location_id)
        )
    return sorted(set(members.values_list("user__email", flat=True)))


def _message(case: RecoveryCase) -> str:
    actions = "\n".join(f"- {a.text}" for a in case.actions.all())
    where = f" at {case.location.name}" if case.location else ""
    return (
        f"A {case.get_kind_display().lower()} case for {case.customer}{where} is overdue and "
        f"was escalated to {case.get_severity_display().lower()} severity.\n\n"
        f"Suggested actions:\n{actions}\n\nOpen the recovery queue to act on it (case #{case.pk})."
    )

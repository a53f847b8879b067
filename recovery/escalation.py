"""Overdue cases are escalated once; the people to tell get an email outside quiet hours."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Role
from recovery import lifecycle
from recovery.events import save_case_events
from recovery.lifecycle import Reason
from recovery.models import CaseEvent, CaseEventType, CaseStatus, RecoveryCase
from recovery.rules import is_quiet_hour

BATCH = 500
logger = logging.getLogger(__name__)


def escalate_overdue(*, now: datetime | None = None, batch_size: int = BATCH) -> int:
    """Escalate open cases past their next SLA. escalate_at is cleared as it happens, so each
    case escalates once; SKIP LOCKED lets two runs share the work."""
    now = now or timezone.now()
    escalated = 0
    while True:
        with transaction.atomic():
            cases = list(
                # Held-out cases have no escalate_at; held_out=False says so to a reader too.
                RecoveryCase.objects.filter(
                    escalate_at__lte=now, status=CaseStatus.OPEN, held_out=False
                )
                .order_by("escalate_at")
                .select_for_update(skip_locked=True)[:batch_size]
            )
            events: list[CaseEvent] = []
            for case in cases:
                plan = lifecycle.plan_escalation(case, now=now)
                if isinstance(plan, lifecycle.Escalate):
                    events += lifecycle.escalate(case, plan, now=now).events
            RecoveryCase.objects.bulk_update(cases, lifecycle.ESCALATED_FIELDS)
            save_case_events(events, now=now)
        escalated += len(events)
        if len(cases) < batch_size:
            return escalated


def notify_escalations(*, now: datetime | None = None, batch_size: int = 200) -> int:
    """Email the escalation role about escalated cases, unless it is quiet hours where the
    case happened: then a run after the quiet hours sends it. Nothing waits in the broker.

    Cases are claimed (compare-and-swap on escalation_notified_at) and committed before any
    mail goes out, so a slow or failing mail server holds no locks; a failed mail releases
    its claim for the next run.
    """
    now = now or timezone.now()
    sent = 0
    last_id = 0
    while True:
        with transaction.atomic():
            candidates = list(
                RecoveryCase.objects.open()
                .worked()
                .filter(
                    escalated_at__isnull=False, escalation_notified_at__isnull=True, pk__gt=last_id
                )
                .select_related("organization", "location")
                .order_by("pk")
                .select_for_update(skip_locked=True, of=("self",))[:batch_size]
            )
            if not candidates:
                return sent
            last_id = candidates[-1].pk
            due = [case.pk for case in candidates if not _quiet_now(case, now)]
            RecoveryCase.objects.filter(pk__in=due).update(escalation_notified_at=now)
        # Read again after the claim: a case closed in the meantime is not emailed.
        for case in (
            RecoveryCase.objects.open()
            .filter(pk__in=due)
            .select_related("organization", "location", "customer", "playbook")
            .prefetch_related("actions")
        ):
            try:
                recipients = _recipients(case)
                if recipients:
                    send_mail(
                        subject=f"Escalated: {case.customer} ({case.get_severity_display()})",
                        message=_message(case, _why(case)),
                        from_email=settings.DEFAULT_FROM_EMAIL,
                        recipient_list=recipients,
                    )
                    sent += 1
            except Exception:
                logger.exception("escalation email for case %s failed; retrying later", case.pk)
                RecoveryCase.objects.filter(pk=case.pk, escalation_notified_at=now).update(
                    escalation_notified_at=None
                )
        if len(candidates) < batch_size:
            return sent


def _quiet_now(case: RecoveryCase, now: datetime) -> bool:
    org = case.organization
    tz = ZoneInfo(case.location.time_zone if case.location else org.time_zone)
    return is_quiet_hour(now.astimezone(tz).hour, org.quiet_hours_start, org.quiet_hours_end)


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


WHY = {
    Reason.ACK_OVERDUE: "nobody acknowledged it in time",
    Reason.RESOLUTION_OVERDUE: "it was acknowledged but not resolved in time",
    Reason.DOUBLE_DEVIATION: "the customer had a second bad experience",
}


def _why(case: RecoveryCase) -> str:
    """Why it escalated, from its latest escalation in the history."""
    data = (
        CaseEvent.objects.filter(case=case, type=CaseEventType.ESCALATED)
        .order_by("-at", "-id")
        .values_list("data", flat=True)
        .first()
    ) or {}
    reason = data.get("reason", "")
    return WHY.get(reason, reason or "it is overdue")


def _message(case: RecoveryCase, why: str) -> str:
    actions = "\n".join(f"- {a.text}" for a in case.actions.all() if a.taken_at is None)
    where = f" at {case.location.name}" if case.location else ""
    link = settings.SITE_URL + reverse("case-page", args=[case.pk])
    return (
        f"A {case.get_kind_display().lower()} case for {case.customer}{where} was escalated to "
        f"{case.get_severity_display().lower()} severity: {why}.\n\n"
        f"Suggested actions:\n{actions}\n\nOpen the case: {link}\n"
    )

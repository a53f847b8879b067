"""Recovery's part of retention (cxcore.retention): the free text of cases older than the
organization's text_retention_days.

Cleared, with the placeholder an erasure uses (so a reader sees that something was there):
- a history event's free text (by the event's time): resolution notes, dismissal reasons,
  anything staff typed; the system's own words, ids and flags stay (`scrub_event_data`);
- a closed case's dismissal reason and its suggested actions (by the time it was closed):
  actions are rendered with the customer's first name and usual order. Open cases keep
  theirs: someone still has to act on them.

Statuses, severities, times, outcomes and every count stay, so the queue's figures and the
insights do not change.
"""

from __future__ import annotations

from django.db.models import Q

from cxcore.privacy import ERASED, ERASED_REASON, rewrite
from cxcore.retention import RetentionContext, clear_in_chunks, register_retention_step
from recovery.models import CaseAction, CaseEvent, CaseStatus, RecoveryCase
from recovery.privacy import scrub_event_data


def _scrub_old_events(context: RetentionContext) -> int:
    """Rewrite the data of the organization's events before the cutoff, a chunk per
    transaction, walking (at, id); an event already scrubbed is not written again."""
    qs = CaseEvent.objects.filter(
        case__organization=context.organization, at__lt=context.cutoff
    ).exclude(data={})
    return rewrite(qs, "data", scrub_event_data, order=("at", "id"), size=context.batch_size)


def clear_case_text(context: RetentionContext) -> dict[str, int]:
    org, cutoff, size = context.organization, context.cutoff, context.batch_size
    closed_before = Q(status=CaseStatus.RESOLVED, resolved_at__lt=cutoff) | Q(
        status=CaseStatus.DISMISSED, dismissed_at__lt=cutoff
    )
    old_cases = RecoveryCase.objects.filter(organization=org).filter(closed_before)
    return {
        "case_events": _scrub_old_events(context),
        "case_dismiss_reasons": clear_in_chunks(
            old_cases.filter(status=CaseStatus.DISMISSED).exclude(
                dismiss_reason__in=("", ERASED, ERASED_REASON)
            ),
            order=("dismissed_at", "id"),
            values={"dismiss_reason": ERASED},
            batch_size=size,
        ),
        "case_actions": clear_in_chunks(
            CaseAction.objects.filter(case__in=old_cases).exclude(text=ERASED),
            order=("id",),
            values={"text": ERASED},
            batch_size=size,
        ),
    }


def register() -> None:
    """Called from RecoveryConfig.ready()."""
    register_retention_step("recovery", clear_case_text)

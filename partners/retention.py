"""Partners' part of retention (cxcore.retention): what a partner answered on an incident
closed before the organization's text_retention_days is cleared, with the placeholder an
erasure uses. Open and answered incidents keep theirs (someone still works them); statuses,
times and counts stay, so the scorecard does not change."""

from __future__ import annotations

from cxcore.privacy import ERASED
from cxcore.retention import RetentionContext, clear_in_chunks, register_retention_step
from partners.models import PartnerIncident


def clear_incident_answers(context: RetentionContext) -> dict[str, int]:
    old = PartnerIncident.objects.filter(
        organization=context.organization, closed_at__lt=context.cutoff
    ).exclude(answer__in=("", ERASED))
    return {
        "partner_incident_answers": clear_in_chunks(
            old, order=("closed_at", "id"), values={"answer": ERASED}, batch_size=context.batch_size
        )
    }


def register() -> None:
    """Called from PartnersConfig.ready()."""
    register_retention_step("partners", clear_incident_answers)

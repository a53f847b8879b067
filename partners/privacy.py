"""Partners' part of an erasure (cxcore.privacy): what the partner answered about a failure
may name the guest ("Mrs Lyon's car…"), so an erasure replaces it with the placeholder. The
incidents stay, without text: the scorecard's counts and times do not change."""

from __future__ import annotations

from cxcore.privacy import ERASED, ErasureContext, register_erase_step
from partners.models import PartnerIncident


def erase_incident_answers(context: ErasureContext) -> dict[str, int]:
    answers = (
        PartnerIncident.objects.filter(customer_id=context.customer_id)
        .exclude(answer__in=("", ERASED))
        .update(answer=ERASED)
    )
    return {"partner_incident_answers": answers}


def register() -> None:
    """Called from PartnersConfig.ready()."""
    register_erase_step("partners", erase_incident_answers)

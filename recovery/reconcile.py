"""The daily reconcile: case marks against the cases, then narratives and due times against
the episodes. Each part says how much it repaired."""

from __future__ import annotations

from django.db.models import Exists, OuterRef

from cxcore.models import Customer
from cxcore.services import rebuild_narratives
from recovery.models import CaseKind, CaseStatus, RecoveryCase


def reconcile_case_marks() -> int:
    """Make each customer's "case open" marks agree with their open cases (set-based)."""
    repaired = 0
    for kind, mark in (
        (CaseKind.RECOVERY, "recovery_case_open"),
        (CaseKind.CARE, "care_case_open"),
    ):
        has_open = Exists(
            RecoveryCase.objects.filter(customer=OuterRef("pk"), kind=kind, status=CaseStatus.OPEN)
        )
        repaired += (
            Customer.objects.filter(**{mark: True}).exclude(has_open).update(**{mark: False})
        )
        repaired += Customer.objects.filter(**{mark: False}).filter(has_open).update(**{mark: True})
    return repaired


def reconcile() -> dict[str, int]:
    marks = reconcile_case_marks()
    checked, repaired = rebuild_narratives()
    return {"marks_repaired": marks, "customers_checked": checked, "narratives_repaired": repaired}

"""The daily reconcile: case marks against the cases, then narratives and due times against
the episodes. Each part says how much it repaired."""

from __future__ import annotations

from django.db.models import Exists, OuterRef

from cxcore.db_router import replica_reads
from cxcore.models import Customer
from cxcore.services import rebuild_narratives
from recovery.models import CaseKind, CaseStatus, RecoveryCase

MARKS_BATCH = 5000


def reconcile_case_marks(*, batch_size: int = MARKS_BATCH) -> int:
    """Make each customer's "case open" marks agree with their open cases.

    The customers whose mark disagrees are found a batch at a time by a scan that may run on a
    replica (cxcore.db_router), and put right on the primary by an update that re-checks the
    same predicate: a replica's lag can postpone a repair to the next run, never make a wrong
    one.
    """
    repaired = 0
    for kind, mark in (
        (CaseKind.RECOVERY, "recovery_case_open"),
        (CaseKind.CARE, "care_case_open"),
    ):
        has_open = Exists(
            RecoveryCase.objects.filter(customer=OuterRef("pk"), kind=kind, status=CaseStatus.OPEN)
        )
        for marked, disagrees in ((True, ~has_open), (False, has_open)):
            wrong = Customer.objects.filter(**{mark: marked}).filter(disagrees)
            last_id = 0
            while True:
                with replica_reads():
                    ids = list(
                        wrong.filter(pk__gt=last_id)
                        .order_by("pk")
                        .values_list("pk", flat=True)[:batch_size]
                    )
                if not ids:
                    break
                repaired += wrong.filter(pk__in=ids).update(**{mark: not marked})
                last_id = ids[-1]
    return repaired


def reconcile() -> dict[str, int]:
    marks = reconcile_case_marks()
    # Its reads lock the customers they fold and decide the writes: the primary's, always.
    checked, repaired = rebuild_narratives()
    return {"marks_repaired": marks, "customers_checked": checked, "narratives_repaired": repaired}

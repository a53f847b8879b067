"""One deadline rule: RecoveryCase.next_deadline (and is_overdue) in Python and
RecoveryCase.objects.overdue(now) in SQL answer alike for every case, edges included."""

from datetime import UTC, datetime, timedelta

from recovery.models import CaseKind, CaseStatus, RecoveryCase
from tests.factories import CustomerFactory

T0 = datetime(2026, 11, 13, 12, 0, tzinfo=UTC)
ACK_DUE, DUE = T0 + timedelta(hours=4), T0 + timedelta(days=2)


def test_next_deadline_and_the_overdue_queryset_agree_on_every_case(org):
    cases = [
        RecoveryCase.objects.create(
            organization=org,
            customer=CustomerFactory.create(organization=org),
            kind=CaseKind.RECOVERY,
            status=status,
            opened_at=T0,
            ack_due_at=ACK_DUE,
            due_at=DUE,
            acknowledged_at=acknowledged_at,
        )
        for status in (CaseStatus.OPEN, CaseStatus.RESOLVED, CaseStatus.DISMISSED)
        for acknowledged_at in (None, T0 + timedelta(hours=1))
    ]
    acknowledged = [c for c in cases if c.acknowledged_at and c.is_open]
    assert [c.next_deadline for c in acknowledged] == [DUE]
    for now in (T0, ACK_DUE, ACK_DUE + timedelta(seconds=1), DUE, DUE + timedelta(seconds=1)):
        in_sql = set(RecoveryCase.objects.overdue(now).values_list("pk", flat=True))
        assert in_sql == {c.pk for c in cases if c.is_overdue(now)}, now
    # A deadline is missed only once it has passed, in both: at ACK_DUE nothing is late yet.
    assert not RecoveryCase.objects.overdue(ACK_DUE).exists()
    assert RecoveryCase.objects.overdue(ACK_DUE + timedelta(seconds=1)).count() == 1
    assert RecoveryCase.objects.overdue(DUE + timedelta(seconds=1)).count() == 2

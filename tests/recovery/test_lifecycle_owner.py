"""One owner per transition: only recovery/lifecycle.py writes a case's status, its
resolution, dismissal or escalation. A grep over the application's source holds it, so a
second writer cannot creep back in (the review found two of each)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "cxcore", "recovery")
OWNER = ROOT / "recovery" / "lifecycle.py"
FIELDS = r"(status|reopened|reopened_at|escalated_at|resolved_at|dismissed_at)"
WRITES = [
    # case.status = ..., case.escalated_at = ... (but not ==)
    re.compile(rf"\b\w*case\w*\.{FIELDS}\s*=(?!=)"),
    # queryset.update(status=...), RecoveryCase(..., status=...) in the same statement
    re.compile(rf"RecoveryCase[\s\S]{{0,400}}?\.update\([^)]*\b{FIELDS}\s*="),
    re.compile(rf"RecoveryCase\([^)]*\b{FIELDS}\s*="),
    # bulk_update of any of these columns
    re.compile(rf"bulk_update\([\s\S]{{0,200}}?[\"']{FIELDS}[\"']"),
]


def sources():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts and path != OWNER:
                yield path


def writes_in(text: str) -> list[str]:
    return [m.group(0) for pattern in WRITES for m in pattern.finditer(text)]


@pytest.mark.parametrize(
    "code",
    [
        "case.status = CaseStatus.RESOLVED",
        "self.case.escalated_at = now",
        "RecoveryCase.objects.filter(pk=1).update(resolved_at=now)",
        "RecoveryCase(customer=c, status='open')",
        'RecoveryCase.objects.bulk_update(cases, ["severity", "escalated_at"])',
    ],
)
def test_the_check_catches_each_way_of_writing_a_transition(code):
    assert writes_in(code)


def test_reading_or_filtering_on_those_fields_is_not_a_write():
    assert not writes_in(
        "if case.status == CaseStatus.OPEN: RecoveryCase.objects.filter(status='open')"
    )


def test_only_the_lifecycle_module_writes_case_transitions():
    found = {
        str(path.relative_to(ROOT)): hits
        for path in sources()
        if (hits := writes_in(path.read_text()))
    }
    assert found == {}

"""One owner per transition: only recovery/lifecycle.py writes a case's status, its
resolution, dismissal or escalation. A grep over the application's source holds it, so a
second writer cannot creep back in (the review found two of each)."""

import re
from pathlib import Path

import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]
# Every installed app of ours, so a new app (partners, imports, …) is searched too.
APPS = tuple(
    sorted(
        Path(config.path).resolve().name
        for config in apps.get_app_configs()
        if Path(config.path).resolve().parent == ROOT  # a package at the project's top
    )
)
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
    # raw SQL: UPDATE recovery_recoverycase SET status = ... (in the SET list, not the WHERE)
    re.compile(
        rf"UPDATE\s+\"?recovery_recoverycase\"?\s+SET\b(?:(?!\bWHERE\b)[^;]){{0,400}}?"
        rf"\b{FIELDS}\s*=",
        re.I,
    ),
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
        "UPDATE recovery_recoverycase SET severity = 3, escalated_at = %s WHERE id = %s",
    ],
)
def test_the_check_catches_each_way_of_writing_a_transition(code):
    assert writes_in(code)


def test_reading_or_filtering_on_those_fields_is_not_a_write():
    assert not writes_in(
        "if case.status == CaseStatus.OPEN: RecoveryCase.objects.filter(status='open')"
    )
    assert not writes_in("UPDATE recovery_recoverycase SET last_shown_at = %s WHERE status = 'x'")


def test_the_check_searches_every_app_of_ours():
    assert {"accounts", "cxcore", "recovery", "partners", "imports"} <= set(APPS)


def test_only_the_lifecycle_module_writes_case_transitions():
    found = {
        str(path.relative_to(ROOT)): hits
        for path in sources()
        if (hits := writes_in(path.read_text()))
    }
    assert found == {}

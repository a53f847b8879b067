"""One way to save case history: recovery.events.save_case_events, which writes the webhooks
of the same events in the same transaction. A grep over the application's source holds it,
so a history row cannot be saved that other systems never hear of."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "cxcore", "recovery", "connectors", "webhooks")
OWNER = ROOT / "recovery" / "events.py"
WRITES = [
    re.compile(r"CaseEvent\.objects\.(bulk_create|create|get_or_create|update_or_create)\("),
    re.compile(r"insert_rows\(\s*CaseEvent\b"),
    # an event built and saved in one statement: actor_event(...).save(), case_event(...).save()
    re.compile(r"(actor_event|case_event|CaseEvent)\([^;]*?\)\s*\.save\("),
]


def sources():
    for app in APPS:
        if not (ROOT / app).exists():
            continue
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts and path != OWNER:
                yield path


def writes_in(text: str) -> list[str]:
    return [m.group(0) for pattern in WRITES for m in pattern.finditer(text)]


@pytest.mark.parametrize(
    "code",
    [
        "CaseEvent.objects.bulk_create(events)",
        "CaseEvent.objects.create(case=case, type='opened')",
        "insert_rows(CaseEvent, self.events)",
        "actor_event(case, CaseEventType.ASSIGNED, actor, at=now).save()",
    ],
)
def test_the_check_catches_each_way_of_saving_an_event(code):
    assert writes_in(code)


def test_reading_events_is_not_a_write():
    assert not writes_in("CaseEvent.objects.filter(case=case).exists()")


def test_only_save_case_events_saves_case_history():
    found = {
        str(path.relative_to(ROOT)): hits
        for path in sources()
        if (hits := writes_in(path.read_text()))
    }
    assert not found, f"save case events through recovery.events.save_case_events: {found}"

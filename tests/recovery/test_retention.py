"""Recovery's part of retention (recovery/retention.py): the texts of cases closed before the
cutoff, and the free text of history events before it, are replaced; open cases keep theirs;
the queue's figures and the insights do not change."""

from __future__ import annotations

from cxcore.privacy import ERASED
from cxcore.retention import clear_old_text
from recovery.models import CaseEvent, CaseEventType, CaseStatus, RecoveryCase
from tests.cxcore.test_privacy import FIRST_NAME
from tests.recovery.test_privacy import period_figures, story  # noqa: F401  (the fixture)


def test_case_texts_past_the_setting_are_replaced_and_the_figures_hold(org, story):  # noqa: F811
    # The story: resolved ~119 days ago, dismissed ~79 days ago, one still open.
    org.text_retention_days = 90
    org.save()
    figures = period_figures(org, story.base)
    statuses = dict(RecoveryCase.objects.values_list("pk", "status"))

    cleared = clear_old_text()

    resolved_actions = set(story.resolved.actions.values_list("text", flat=True))
    assert resolved_actions == {ERASED}
    resolution = CaseEvent.objects.get(case=story.resolved, type=CaseEventType.RESOLVED)
    assert "Qx7" not in str(resolution.data)
    # Closed after the cutoff, or still open: kept, someone may still need the words.
    story.dismissed.refresh_from_db()
    assert story.dismissed.dismiss_reason.startswith("Qx7dismiss")
    assert any(FIRST_NAME in text for text in story.open.actions.values_list("text", flat=True))
    assert cleared["case_actions"] == story.resolved.actions.count()
    assert cleared["case_events"] >= 1
    assert dict(RecoveryCase.objects.values_list("pk", "status")) == statuses
    assert period_figures(org, story.base) == figures

    # A year on, the dismissal reason goes too; the open case's actions still stay.
    org.text_retention_days = 30
    org.save()
    clear_old_text()
    story.dismissed.refresh_from_db()
    assert story.dismissed.dismiss_reason == ERASED
    assert story.open.status == CaseStatus.OPEN
    assert any(FIRST_NAME in text for text in story.open.actions.values_list("text", flat=True))
    assert set(clear_old_text().values()) == {0}


def test_the_retention_step_is_registered_at_start_up():
    from cxcore.retention import _steps

    assert "recovery" in _steps

"""Recovery's vocabulary is written once: every editor, validator and renderer derives from it."""

from datetime import UTC, datetime

from recovery.forms import PlaybookForm
from recovery.rules import PLACEHOLDERS, CaseContext, check_action_template, render_action
from recovery.vocabulary import PLAYBOOK_FIELDS, Placeholder, placeholder_help


def test_every_placeholder_is_accepted_rendered_and_named_in_the_help():
    ctx = CaseContext(
        kind="recovery",
        touchpoints=frozenset({"wait"}),
        first_name="Margaret",
        usual_order="Flat white",
        happened_at=datetime(2026, 11, 13, 12, 0, tzinfo=UTC),
        location_name="Harbour Rd",
    )
    assert set(PLACEHOLDERS) == set(Placeholder.values)
    for placeholder in Placeholder.values:
        template = "{" + placeholder + "}"
        check_action_template(template)
        assert "{" not in render_action(template, ctx)
        assert template in placeholder_help()
    assert "{location}" in PlaybookForm.base_fields["actions_text"].help_text


def test_the_playbook_form_edits_every_playbook_field():
    assert set(PlaybookForm.base_fields) - {"actions_text"} == set(PLAYBOOK_FIELDS) - {"actions"}

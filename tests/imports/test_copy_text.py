"""COPY's text format as the imports write it (imports.copy_text)."""

import pytest

from imports.copy_text import COPY_ESCAPES, NULL, copy_field, escaped


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "",
        "Zoë Ångström",
        "back\\slash",
        "tab\there",
        "two\nlines",
        "cr\rlf",
        "\\N",
        "\t\n",
    ],
)
def test_escaped_is_the_full_translation_whether_or_not_it_is_needed(value):
    assert escaped(value) == value.translate(COPY_ESCAPES)


@pytest.mark.parametrize("special", [chr(code) for code in COPY_ESCAPES])
def test_every_character_copy_escapes_is_looked_for(special):
    """A character added to COPY_ESCAPES fails here until escaped() looks for it too."""
    assert escaped(f"a{special}b") == f"a{special}b".translate(COPY_ESCAPES) != f"a{special}b"


def test_none_is_copys_null_and_a_backslash_n_value_is_not():
    assert copy_field(None) == NULL
    assert copy_field("\\N") == "\\\\N"

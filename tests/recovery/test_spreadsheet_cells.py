"""The queue's CSV cells are text to a spreadsheet (recovery/views/queue.py): a cell that
starts like a formula, including with a tab or a carriage return, gets a leading apostrophe."""

from __future__ import annotations

import pytest

from cxcore.spreadsheets import spreadsheet_safe


@pytest.mark.parametrize(
    "text",
    ['=HYPERLINK("http://x")', "+1 555", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1"],
)
def test_a_formula_start_is_escaped(text):
    assert spreadsheet_safe(text) == "'" + text


@pytest.mark.parametrize("text", ["Margaret Lee", "ana@example.com", "", " =1", "1+1"])
def test_plain_text_is_left_alone(text):
    assert spreadsheet_safe(text) == text

"""CSV cells a spreadsheet would run as formulas: every CSV we hand out (the queue's export,
an import's rejected rows) writes its cells through `spreadsheet_safe`."""

from __future__ import annotations

# A cell starting with one of these is a formula to Excel, Sheets and LibreOffice.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """Text a spreadsheet shows as text: a leading apostrophe before a formula's first mark."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text

"""CSV cells a spreadsheet would execute, neutralised as OWASP recommends ("CSV Injection").

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
read by Excel, LibreOffice and Google Sheets as a formula; a free-text answer
or a user name like ``=HYPERLINK(...)`` would run when an analyst opens the
export. Such a cell is written with a leading single quote, which every
spreadsheet shows as text. Numbers (``-0.25``) are left as they are: they
are not formulas and must stay numbers.

So that the tidy CSV still round-trips exactly (``analyze`` on an export gives
the page's figures), a cell that already starts with a quote gets one more,
and reading removes exactly one leading quote: writing then reading is the
identity for every text.
"""

from __future__ import annotations

import math

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def spreadsheet_safe(value):
    """The cell as written: a quote in front of text a spreadsheet would run as a formula."""
    if not isinstance(value, str) or not value:
        return value
    if value.startswith("'") or (value.startswith(FORMULA_STARTS) and not _is_number(value)):
        return "'" + value
    return value


def from_spreadsheet_safe(text: str) -> str:
    """The text a spreadsheet_safe cell was made from."""
    return text[1:] if text.startswith("'") else text

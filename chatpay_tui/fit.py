"""Fitting text into a width: what does not fit is cut and ends in "…"."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text

ELLIPSIS = "…"


def ellipsize(text: str, width: int) -> str:
    """``text`` when it fits in ``width`` cells, else its start and "…" (empty below one cell)."""
    if cell_len(text) <= width:
        return text
    if width <= 0:
        return ""
    cut = Text(text)
    cut.truncate(width, overflow="ellipsis")
    return cut.plain


def ellipsize_text(text: Text, width: int) -> Text:
    """Like :func:`ellipsize` for styled text (the styles are kept)."""
    if text.cell_len <= width:
        return text
    cut = text.copy()
    cut.truncate(max(width, 0), overflow="ellipsis")
    return cut


def first_fitting(choices: Sequence[str], width: int) -> str:
    """The first of ``choices`` (longest first) that fits, else the last one ellipsized."""
    for choice in choices:
        if cell_len(choice) <= width:
            return choice
    return ellipsize(choices[-1], width) if choices else ""

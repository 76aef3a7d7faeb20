"""How many columns text takes on a terminal, and cutting output into rows.

East Asian wide and fullwidth characters take two columns, combining marks
and the zero-width joiner none, everything else one. Our own colour
sequences (CSI ... m) take none; peer text never contains ESC (the sanitiser
has made it visible), so every escape sequence met here is ours.
"""

from __future__ import annotations

import re
import unicodedata

_CSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def char_width(ch: str) -> int:
    """Columns a character takes on a terminal: 2 for wide (CJK), 0 for combining."""
    if ch < "\u0300":
        return 1
    if unicodedata.combining(ch) or ch == "\u200d":
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def text_width(text: str) -> int:
    if text.isascii():
        return len(text)
    return sum(map(char_width, text))


def wrap_line(line: str, columns: int, margin: str) -> list[str]:
    """Cut one line of output into rows of at most ``columns`` columns.

    Every row after the first starts with ``margin``, which none of our own
    lines starts with: a peer cannot pad a message so that its rest looks
    like a line of ours. A wide character that would straddle the edge goes
    to the next row, as a terminal would put it.
    """
    margin_width = text_width(margin)
    if columns <= margin_width + 2 or (line.isascii() and len(line) <= columns):
        return [line]
    rows: list[str] = []
    row: list[str] = []
    width, i, n = 0, 0, len(line)
    while i < n:
        ch = line[i]
        if ch == "\x1b":
            m = _CSI.match(line, i)
            if m is not None:
                row.append(m.group())
                i = m.end()
                continue
        w = char_width(ch)
        if width + w > columns:
            rows.append("".join(row))
            row, width = [margin], margin_width
        row.append(ch)
        width += w
        i += 1
    rows.append("".join(row))
    return rows


def cursor_row(text: str, cursor_column: int, columns: int) -> int:
    """The row the cursor is on once a terminal ``columns`` wide reflows ``text``.

    ``text`` was drawn on one row with the cursor at ``cursor_column``; a
    terminal that re-wraps long rows when it narrows (most do) moves it down.
    """
    row = col = seen = 0
    for ch in text:
        if seen >= cursor_column:
            break
        w = char_width(ch)
        if col + w > columns:
            row, col = row + 1, 0
        col += w
        seen += w
    if col >= columns:      # the cursor's own cell starts the next row
        row += 1
    return row


def rows_taken(text: str, columns: int) -> int:
    """How many rows ``text`` takes once a terminal ``columns`` wide wraps it."""
    row = col = 0
    for ch in text:
        w = char_width(ch)
        if col + w > columns:
            row, col = row + 1, 0
        col += w
    return row + 1

"""The interactive terminal: raw-ish mode, and an input line kept intact.

When stdin and stdout are both terminals, chat.py owns the input line: the
kernel's line editing and echo are turned off (termios), keys go to a
:class:`~commands.terminal.lineedit.LineEditor`, and :class:`Screen` draws the
prompt and what is being typed. Output never lands in the middle of the
input line: the console calls ``before_output()`` (erase the input line),
writes its lines (cut to the terminal's width by ``wrap_output``, every
continuation row marked with ``MARGIN``), then ``after_output()`` (draw
prompt, text and cursor again below).

The input line is always one row: a line longer than the terminal scrolls
sideways so the cursor stays in view. Drawing it costs time in proportion
to the terminal's width, not the line's length: the screen keeps the index
of the first character shown and walks from there or back from the cursor,
never over the whole line.

SIGWINCH (a resize) calls ``resized()``. Most terminals re-wrap a row that
no longer fits when they narrow, so the input line drawn at the old width
may now take several rows, the cursor on one of them: the screen goes up to
the first of them and clears each before drawing again, so no stale copy is
left above the prompt. (A terminal that cuts rows instead of re-wrapping
them, such as xterm, loses as many rows of older output from view.) The terminal's modes are saved on
entry and restored by :meth:`Terminal.restore` on every way out (the caller
uses try/finally, and an ``atexit`` hook is the backstop).
"""

from __future__ import annotations

import atexit
import os
import termios
from typing import Callable

from .keys import DISABLE_PASTE, ENABLE_PASTE
from .lineedit import LineEditor
from .width import char_width, cursor_row, rows_taken, text_width, wrap_line

PROMPT = "> "
ERASE_LINE = "\r\x1b[K"
CLEAR_SCREEN = "\x1b[H\x1b[2J"
MARGIN, PLAIN_MARGIN = "  \u2506 ", "  | "   # starts every continuation row of output
DEFAULT_COLUMNS = 80
COMMITTED_ROWS = 4      # an entered line is left on screen in at most this many rows


def terminal_columns(fd: int = 1) -> int:
    try:
        return os.get_terminal_size(fd).columns or DEFAULT_COLUMNS
    except OSError:
        return DEFAULT_COLUMNS


class Terminal:
    """Puts a terminal in character-at-a-time mode, with bracketed paste, and back."""

    def __init__(self, fd: int = 0, out_fd: int = 1) -> None:
        self.fd = fd
        self.out_fd = out_fd
        self._saved: list | None = None
        self._raw: list | None = None

    def enter(self) -> None:
        self._saved = termios.tcgetattr(self.fd)
        mode = termios.tcgetattr(self.fd)
        # iflag: no CR->NL (Enter arrives as \r), no XON/XOFF (Ctrl-S/Ctrl-Q are keys).
        mode[0] &= ~(termios.ICRNL | termios.IXON)
        # lflag: no line buffering, no echo, no signals from keys (Ctrl-C and Ctrl-Z
        # reach the editor as keys), no extended processing (Ctrl-V).
        mode[3] &= ~(termios.ICANON | termios.ECHO | termios.ISIG | termios.IEXTEN)
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        self._raw = mode
        termios.tcsetattr(self.fd, termios.TCSADRAIN, mode)
        atexit.register(self.restore)
        self._say(ENABLE_PASTE)

    def suspend(self) -> None:
        """Ctrl-Z: the modes as we found them while we are stopped; resume() undoes it."""
        self._set(self._saved)

    def resume(self) -> None:
        self._set(self._raw if self._saved is not None else None)

    def _set(self, mode: list | None) -> None:
        if mode is not None:
            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, mode)
            except termios.error:
                pass   # the terminal is gone (EIO after a hangup)

    def restore(self) -> None:
        if self._saved is not None:
            saved, self._saved = self._saved, None
            self._say(DISABLE_PASTE)
            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)
            except termios.error:
                pass

    def _say(self, sequence: str) -> None:
        try:
            os.write(self.out_fd, sequence.encode("ascii"))
        except OSError:
            pass


class Screen:
    """Draws the prompt and the editor's line; hides it around other output."""

    def __init__(self, editor: LineEditor, write: Callable[[str], None],
                 columns: Callable[[], int] = terminal_columns, prompt: str = PROMPT,
                 encoding: str = "utf-8") -> None:
        self.editor = editor
        self._write = write
        self._get_columns = columns
        self.columns = columns()
        self.prompt = prompt
        self._prompt_width = text_width(prompt)
        self._encoding = encoding
        try:
            MARGIN.encode(encoding)
            self.margin = MARGIN
        except (UnicodeError, LookupError):
            self.margin = PLAIN_MARGIN
        self._scroll = 0        # index of the first character shown
        self._shown = False     # is the input line on the screen now?
        self._drawn = ""        # the row as last drawn, and where its cursor was
        self._drawn_cursor = 0
        self._drawn_columns = self.columns

    # -- the console's hooks ----------------------------------------------------

    def before_output(self) -> None:
        if self._shown:
            self._write(ERASE_LINE)
            self._shown = False

    def after_output(self) -> None:
        self.refresh()

    def wrap_output(self, data: bytes) -> bytes:
        """Lines of output cut to the terminal's width; continuation rows get the margin."""
        columns = self.columns
        if data.isascii() and max(map(len, data.split(b"\n"))) <= columns:
            return data      # the common case: nothing to cut (colours only make it longer)
        text = data.decode(self._encoding, "replace")
        rows: list[str] = []
        for line in text.split("\n"):
            rows.extend(wrap_line(line, columns, self.margin))
        return "\n".join(rows).encode(self._encoding, "backslashreplace")

    # -- drawing ---------------------------------------------------------------------

    def refresh(self) -> None:
        """Draw the input line again, with the cursor where it belongs."""
        self._write(self.render())
        self._shown = True

    def resized(self) -> None:
        """SIGWINCH: clear every row the input line now takes, then draw it again."""
        self.columns = columns = self._get_columns()
        erase = ""
        if self._shown and columns < self._drawn_columns:
            up = cursor_row(self._drawn, self._drawn_cursor, columns)
            rows = max(up + 1, rows_taken(self._drawn, columns))
            # Row by row: tmux and others move the whole screen into the scrollback
            # when it is cleared from its top corner, stale line included.
            erase = ((f"\x1b[{up}A" if up else "") + "\r\x1b[K\x1b[B" * (rows - 1)
                     + (f"\r\x1b[K\x1b[{rows - 1}A" if rows > 1 else ""))
        self._write(erase + self.render())
        self._shown = True

    def clear_screen(self) -> None:
        """Ctrl-L: an empty screen with the prompt at the top."""
        self._write(CLEAR_SCREEN + self.render())
        self._shown = True

    def render(self) -> str:
        buffer, cursor = self.editor.buffer, self.editor.cursor
        room = max(4, self.columns - self._prompt_width - 1)
        start = min(self._scroll, cursor)
        # Scroll right until the cursor is in view: walk back from the cursor.
        if _reaches(buffer, start, cursor, room):
            start, width = cursor, 0
            while start and width + char_width(buffer[start - 1]) <= room:
                start -= 1
                width += char_width(buffer[start])
        # Show as much as fits from there; if the end is in view, scroll back left.
        end, width = start, 0
        n = len(buffer)
        while end < n and width + char_width(buffer[end]) <= room:
            width += char_width(buffer[end])
            end += 1
        if end == n:
            while start and width + char_width(buffer[start - 1]) <= room:
                start -= 1
                width += char_width(buffer[start])
        self._scroll = start
        row = self.prompt + buffer[start:end]
        column = self._prompt_width + text_width(buffer[start:cursor])
        self._drawn, self._drawn_cursor, self._drawn_columns = row, column, self.columns
        return f"{ERASE_LINE}{row}\r" + (f"\x1b[{column}C" if column else "")

    def commit_line(self, line: str) -> None:
        """Enter was pressed: leave the line on screen (a few rows at most), start a new one."""
        line = line[:self.columns * COMMITTED_ROWS]
        rows = wrap_line(self.prompt + line, self.columns, self.margin)[:COMMITTED_ROWS]
        self._write(ERASE_LINE + "\n".join(rows) + "\n")
        self._shown = False
        self._scroll = 0

    def close(self) -> None:
        """Leave the terminal with no prompt left on it."""
        if self._shown:
            self._write(ERASE_LINE)
            self._shown = False


def _reaches(text: str, start: int, stop: int, room: int) -> bool:
    """Is ``text[start:stop]`` wider than ``room``? (Looks at ``room`` characters at most.)"""
    width = 0
    for i in range(start, stop):
        width += char_width(text[i])
        if width > room:
            return True
    return False

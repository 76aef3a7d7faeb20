"""The interactive terminal: raw-ish mode, and an input line kept intact.

When stdin and stdout are both terminals, chat.py owns the input line: the
kernel's line editing and echo are turned off (termios), keys go to a
:class:`~commands.terminal.lineedit.LineEditor`, and :class:`Screen` draws the prompt
and what is being typed. Output never lands in the middle of the input line:
the console calls ``before_output()`` (erase the input line), writes its
lines, then ``after_output()`` (draw prompt, text and cursor again below).

A line longer than the terminal scrolls sideways so the cursor stays in view;
SIGWINCH (a resize) just redraws. The terminal's modes are saved on entry and
restored by :meth:`Terminal.restore` on every way out (the caller uses
try/finally, and an ``atexit`` hook is the backstop).
"""

from __future__ import annotations

import atexit
import shutil
import termios
from typing import Callable

from .lineedit import LineEditor, char_width, text_width

PROMPT = "> "
ERASE_LINE = "\r\x1b[K"


class Terminal:
    """Puts a terminal in character-at-a-time mode and back."""

    def __init__(self, fd: int = 0) -> None:
        self.fd = fd
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
            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)
            except termios.error:
                pass


class Screen:
    """Draws the prompt and the editor's line; hides it around other output."""

    def __init__(self, editor: LineEditor, write: Callable[[str], None],
                 columns: Callable[[], int] | None = None, prompt: str = PROMPT) -> None:
        self.editor = editor
        self._write = write
        self._columns = columns or (lambda: shutil.get_terminal_size().columns)
        self.prompt = prompt
        self._scroll = 0        # index of the first character shown
        self._shown = False     # is the input line on the screen now?

    # -- the console's hooks ----------------------------------------------------

    def before_output(self) -> None:
        if self._shown:
            self._write(ERASE_LINE)
            self._shown = False

    def after_output(self) -> None:
        self.refresh()

    # -- drawing ---------------------------------------------------------------------

    def refresh(self) -> None:
        """Draw the input line again, with the cursor where it belongs."""
        self._write(self.render())
        self._shown = True

    def render(self) -> str:
        buffer, cursor = self.editor.buffer, self.editor.cursor
        room = max(4, self._columns() - text_width(self.prompt) - 1)
        # Scroll sideways so the cursor is in view, and show as much as fits.
        if cursor < self._scroll:
            self._scroll = cursor
        while text_width(buffer[self._scroll:cursor]) > room:
            self._scroll += 1
        while self._scroll and text_width(buffer[self._scroll - 1:]) <= room:
            self._scroll -= 1
        shown, width = [], 0
        for ch in buffer[self._scroll:]:
            width += char_width(ch)
            if width > room:
                break
            shown.append(ch)
        column = text_width(self.prompt) + text_width(buffer[self._scroll:cursor])
        return f"{ERASE_LINE}{self.prompt}{''.join(shown)}\r\x1b[{column}C"

    def commit_line(self, line: str) -> None:
        """Enter was pressed: leave the line as typed on screen, start a new one."""
        self._write(f"{ERASE_LINE}{self.prompt}{line}\n")
        self._shown = False
        self._scroll = 0

    def close(self) -> None:
        """Leave the terminal with no prompt left on it."""
        if self._shown:
            self._write(ERASE_LINE)
            self._shown = False

"""A line editor as a pure state machine: key bytes in, edits and events out.

It owns the text being typed and the cursor, the history of this run and Tab
completion, and knows nothing of terminals or sockets: :mod:`.screen` draws
what it holds and :mod:`.keys` turns bytes into keys. ``feed(bytes)``
accepts input split anywhere and returns the events it completed, each a
small frozen dataclass (an :data:`Event`):

* ``LineEntered(text)``  Enter was pressed;
* ``EndOfInput()``       Ctrl-D on an empty line;
* ``Interrupt()``        Ctrl-C on an empty line (on a non-empty one it clears
  it), unless ``on_interrupt()`` took the key (a pending connect, say);
* ``Choices(options)``   a second Tab with several possible completions;
* ``ClearScreen()``      Ctrl-L.

Keys: printable text inserts; Left/Right (Ctrl-B/Ctrl-F), Home/End
(Ctrl-A/Ctrl-E), Alt-b/Alt-f (a word left/right), Backspace, Delete (Ctrl-D
on a non-empty line), Ctrl-U (delete to start), Ctrl-K (delete to end),
Ctrl-W (delete the space-separated word before the cursor), Alt-Backspace
and Alt-d (delete the word before/after the cursor, words being letters and
digits), Up/Down (history), Tab (complete).

Every key costs time linear in the line's length at most (one string copy);
runs of typed or pasted text are inserted in one piece.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Tuple, Union

from .keys import KeyDecoder
from .width import char_width, text_width  # noqa: F401 - the screen's measures, re-exported


@dataclass(frozen=True)
class LineEntered:
    """Enter was pressed: ``text`` is the line as typed."""
    text: str


@dataclass(frozen=True)
class EndOfInput:
    """Ctrl-D on an empty line."""


@dataclass(frozen=True)
class Interrupt:
    """Ctrl-C on an empty line, and nobody else took it."""


@dataclass(frozen=True)
class Choices:
    """A second Tab, and several completions fit: ``options``, sorted."""
    options: Tuple[str, ...]


@dataclass(frozen=True)
class ClearScreen:
    """Ctrl-L."""


Event = Union[LineEntered, EndOfInput, Interrupt, Choices, ClearScreen]

CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E, CTRL_F = "\x01", "\x02", "\x03", "\x04", "\x05", "\x06"
CTRL_H, TAB, LF, CTRL_K, CTRL_L, CR = "\x08", "\t", "\n", "\x0b", "\x0c", "\r"
CTRL_N, CTRL_P, CTRL_U, CTRL_W, DEL = "\x0e", "\x10", "\x15", "\x17", "\x7f"

_CONTROL_ACTIONS = {CTRL_A: "home", CTRL_E: "end", CTRL_B: "left", CTRL_F: "right",
                    CTRL_P: "up", CTRL_N: "down", CTRL_U: "kill-start", CTRL_K: "kill-end",
                    CTRL_W: "kill-space-word", DEL: "backspace", CTRL_H: "backspace"}

HISTORY_SIZE = 500


class LineEditor:
    def __init__(self, completer: Callable[[str], list[str]] | None = None,
                 on_interrupt: Callable[[], bool] | None = None) -> None:
        self.buffer = ""
        self.cursor = 0                  # index into buffer (code points)
        self.history: list[str] = []
        self._history_pos: int | None = None
        self._draft = ""                 # what was typed before walking the history
        self._completer = completer
        self._on_interrupt = on_interrupt
        self._keys = KeyDecoder()
        self._last_was_tab = False

    # -- input ---------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        for kind, value in self._keys.feed(data):
            if kind == "key":
                self._key(value, events)
                continue
            self._last_was_tab = False
            if kind == "text":
                self._insert(value)
            else:
                self._action(value, events)
        return events

    def _insert(self, text: str) -> None:
        cursor = self.cursor
        self.buffer = self.buffer[:cursor] + text + self.buffer[cursor:]
        self.cursor = cursor + len(text)

    def _key(self, ch: str, events: list[Event]) -> None:
        was_tab, self._last_was_tab = self._last_was_tab, False
        if ch in (CR, LF):
            line, self.buffer, self.cursor = self.buffer, "", 0
            self._history_pos = None
            if line.strip() and (not self.history or self.history[-1] != line):
                self.history.append(line)
                del self.history[:-HISTORY_SIZE]
            events.append(LineEntered(line))
        elif ch == TAB:
            self._complete(was_tab, events)
            self._last_was_tab = True
        elif ch == CTRL_C:
            if self._on_interrupt is not None and self._on_interrupt():
                return
            if self.buffer:
                self.clear()
            else:
                events.append(Interrupt())
        elif ch == CTRL_D:
            if self.buffer:
                self._action("delete", events)
            else:
                events.append(EndOfInput())
        elif ch == CTRL_L:
            events.append(ClearScreen())
        else:
            action = _CONTROL_ACTIONS.get(ch)
            if action is not None:
                self._action(action, events)
            # other control keys are ignored

    def _action(self, action: str, events: list[Event]) -> None:
        buffer, cursor = self.buffer, self.cursor
        if action == "left":
            self.cursor = max(0, cursor - 1)
        elif action == "right":
            self.cursor = min(len(buffer), cursor + 1)
        elif action == "home":
            self.cursor = 0
        elif action == "end":
            self.cursor = len(buffer)
        elif action == "word-left":
            self.cursor = self._word_start()
        elif action == "word-right":
            self.cursor = self._word_end()
        elif action == "backspace":
            if cursor:
                self.buffer = buffer[:cursor - 1] + buffer[cursor:]
                self.cursor = cursor - 1
        elif action == "delete":
            if cursor < len(buffer):
                self.buffer = buffer[:cursor] + buffer[cursor + 1:]
        elif action == "kill-start":
            self.buffer, self.cursor = buffer[cursor:], 0
        elif action == "kill-end":
            self.buffer = buffer[:cursor]
        elif action == "kill-space-word":
            start = buffer.rfind(" ", 0, len(buffer[:cursor].rstrip(" "))) + 1
            self.buffer = buffer[:start] + buffer[cursor:]
            self.cursor = start
        elif action == "kill-word-back":
            start = self._word_start()
            self.buffer = buffer[:start] + buffer[cursor:]
            self.cursor = start
        elif action == "kill-word-forward":
            self.buffer = buffer[:cursor] + buffer[self._word_end():]
        elif action in ("up", "down"):
            self._walk_history(-1 if action == "up" else 1)

    def _word_start(self) -> int:
        """Where Alt-b goes: back over non-word characters, then over a word."""
        buffer, i = self.buffer, self.cursor
        while i and not buffer[i - 1].isalnum():
            i -= 1
        while i and buffer[i - 1].isalnum():
            i -= 1
        return i

    def _word_end(self) -> int:
        """Where Alt-f goes: forward over non-word characters, then over a word."""
        buffer, i, n = self.buffer, self.cursor, len(self.buffer)
        while i < n and not buffer[i].isalnum():
            i += 1
        while i < n and buffer[i].isalnum():
            i += 1
        return i

    def _walk_history(self, step: int) -> None:
        if not self.history:
            return
        if self._history_pos is None:
            if step > 0:
                return
            self._draft = self.buffer
            pos = len(self.history) - 1
        else:
            pos = self._history_pos + step
        if pos < 0:
            return
        if pos >= len(self.history):
            self._history_pos = None
            self.buffer = self._draft
        else:
            self._history_pos = pos
            self.buffer = self.history[pos]
        self.cursor = len(self.buffer)

    def _complete(self, second_tab: bool, events: list[Event]) -> None:
        if self._completer is None:
            return
        before = self.buffer[:self.cursor]
        word = before[before.rfind(" ") + 1:]
        choices = sorted(set(self._completer(before)))
        if not choices:
            return
        if len(choices) == 1:
            addition = choices[0][len(word):] + " "
        else:
            addition = _common_prefix(choices)[len(word):]
            if not addition and second_tab:
                events.append(Choices(tuple(choices)))
        if addition:
            self._insert(addition)

    def clear(self) -> None:
        self.buffer, self.cursor = "", 0


def _common_prefix(words: list[str]) -> str:
    first, last = min(words), max(words)
    n = 0
    while n < len(first) and n < len(last) and first[n] == last[n]:
        n += 1
    return first[:n]

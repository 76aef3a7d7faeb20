"""A line editor as a pure state machine: key bytes in, edits and events out.

It owns the text being typed and the cursor, the history of this run and Tab
completion, and knows nothing of terminals or sockets: :mod:`commands.terminal.screen`
draws what it holds. ``feed(bytes)`` accepts input split anywhere (half a
UTF-8 character, half an escape sequence) and returns the events it
completed:

* ``("line", text)``   Enter was pressed;
* ``("eof",)``         Ctrl-D on an empty line;
* ``("interrupt",)``   Ctrl-C on an empty line (on a non-empty one it clears it);
* ``("choices", [...])`` a second Tab with several possible completions.

Keys: printable text inserts; Left/Right (Ctrl-B/Ctrl-F), Home/End
(Ctrl-A/Ctrl-E), Backspace, Delete (Ctrl-D on a non-empty line), Ctrl-U
(delete to start), Ctrl-K (delete to end), Ctrl-W (delete the word before the
cursor), Up/Down (history), Tab (complete).
"""

from __future__ import annotations

import codecs
import unicodedata
from typing import Callable

Event = tuple

CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E, CTRL_F = "\x01", "\x02", "\x03", "\x04", "\x05", "\x06"
CTRL_H, TAB, LF, CTRL_K, CTRL_L, CR = "\x08", "\t", "\n", "\x0b", "\x0c", "\r"
CTRL_N, CTRL_P, CTRL_U, CTRL_W, ESC, DEL = "\x0e", "\x10", "\x15", "\x17", "\x1b", "\x7f"

# Final part of CSI / SS3 sequences -> action name.
_SEQUENCES = {
    "[A": "up", "[B": "down", "[C": "right", "[D": "left", "[H": "home", "[F": "end",
    "OA": "up", "OB": "down", "OC": "right", "OD": "left", "OH": "home", "OF": "end",
    "[1~": "home", "[7~": "home", "[4~": "end", "[8~": "end", "[3~": "delete",
}

HISTORY_SIZE = 500


def char_width(ch: str) -> int:
    """Columns a character takes on a terminal: 2 for wide (CJK), 0 for combining."""
    if unicodedata.combining(ch) or ch == "\u200d":
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def text_width(text: str) -> int:
    if text.isascii():
        return len(text)
    return sum(map(char_width, text))


class LineEditor:
    def __init__(self, completer: Callable[[str], list[str]] | None = None) -> None:
        self.buffer = ""
        self.cursor = 0                  # index into buffer (code points)
        self.history: list[str] = []
        self._history_pos: int | None = None
        self._draft = ""                 # what was typed before walking the history
        self._completer = completer
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._escape = ""                # an escape sequence still arriving
        self._last_was_tab = False

    # -- input ---------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        for ch in self._decoder.decode(data):
            if self._escape:
                self._escape += ch
                self._maybe_finish_escape(events)
                continue
            if ch == ESC:
                self._escape = ch
                continue
            self._key(ch, events)
        return events

    def _maybe_finish_escape(self, events: list[Event]) -> None:
        seq = self._escape[1:]
        if seq and seq[0] not in "[O":
            self._escape = ""           # ESC + something else: drop the ESC, keep the key
            self._key(seq, events)
            return
        if len(seq) < 2:
            return
        last = seq[-1]
        if seq[0] == "O" or "\x40" <= last <= "\x7e":
            self._escape = ""
            action = _SEQUENCES.get(seq)
            if action is not None:
                self._action(action, events)
        elif len(seq) > 16:
            self._escape = ""           # not a sequence we know: forget it

    def _key(self, ch: str, events: list[Event]) -> None:
        was_tab, self._last_was_tab = self._last_was_tab, False
        if ch in (CR, LF):
            line, self.buffer, self.cursor = self.buffer, "", 0
            self._history_pos = None
            if line.strip() and (not self.history or self.history[-1] != line):
                self.history.append(line)
                del self.history[:-HISTORY_SIZE]
            events.append(("line", line))
        elif ch == TAB:
            self._complete(was_tab, events)
            self._last_was_tab = True
        elif ch == CTRL_C:
            if self.buffer:
                self.buffer, self.cursor = "", 0
            else:
                events.append(("interrupt",))
        elif ch == CTRL_D:
            if self.buffer:
                self._action("delete", events)
            else:
                events.append(("eof",))
        elif ch in (DEL, CTRL_H):
            if self.cursor:
                self.buffer = self.buffer[:self.cursor - 1] + self.buffer[self.cursor:]
                self.cursor -= 1
        else:
            action = {CTRL_A: "home", CTRL_E: "end", CTRL_B: "left", CTRL_F: "right",
                      CTRL_P: "up", CTRL_N: "down", CTRL_U: "kill-start",
                      CTRL_K: "kill-end", CTRL_W: "kill-word"}.get(ch)
            if action is not None:
                self._action(action, events)
            elif ch.isprintable() or (ord(ch) >= 0xA0 and char_width(ch) == 0):
                self.buffer = self.buffer[:self.cursor] + ch + self.buffer[self.cursor:]
                self.cursor += 1
            # other control keys are ignored

    def _action(self, action: str, events: list[Event]) -> None:
        if action == "left":
            self.cursor = max(0, self.cursor - 1)
        elif action == "right":
            self.cursor = min(len(self.buffer), self.cursor + 1)
        elif action == "home":
            self.cursor = 0
        elif action == "end":
            self.cursor = len(self.buffer)
        elif action == "delete":
            self.buffer = self.buffer[:self.cursor] + self.buffer[self.cursor + 1:]
        elif action == "kill-start":
            self.buffer, self.cursor = self.buffer[self.cursor:], 0
        elif action == "kill-end":
            self.buffer = self.buffer[:self.cursor]
        elif action == "kill-word":
            left = self.buffer[:self.cursor].rstrip(" ")
            start = left.rfind(" ") + 1
            self.buffer = self.buffer[:start] + self.buffer[self.cursor:]
            self.cursor = start
        elif action in ("up", "down"):
            self._walk_history(-1 if action == "up" else 1)

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
                events.append(("choices", choices))
        if addition:
            self.buffer = before + addition + self.buffer[self.cursor:]
            self.cursor += len(addition)

    def clear(self) -> None:
        self.buffer, self.cursor = "", 0


def _common_prefix(words: list[str]) -> str:
    first, last = min(words), max(words)
    n = 0
    while n < len(first) and n < len(last) and first[n] == last[n]:
        n += 1
    return first[:n]

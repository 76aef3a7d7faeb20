"""Key bytes to keys: UTF-8, escape sequences, Alt keys and bracketed paste.

:class:`KeyDecoder` accepts input split anywhere (half a UTF-8 character,
half an escape sequence, half a paste) and returns what it completed:

* ``("text", str)``   characters to insert (runs of them, in one piece, so a
  paste of 100,000 characters is one insertion, not 100,000);
* ``("key", ch)``     a control character (Enter, Tab, Ctrl-A ...);
* ``("action", name)`` an escape sequence we know (arrows, Home, Alt-b ...).

ESC followed by a character is an Alt (Meta) key, as readline reads it:
Alt-b/Alt-f move by a word, Alt-d and Alt-Backspace delete one. An Alt key
we do not know, and any escape sequence we do not know, is ignored: it never
inserts letters.

Bracketed paste: a terminal in that mode (``ENABLE_PASTE``) wraps pasted
text in ``ESC[200~`` ... ``ESC[201~``. Everything in between is text: line
breaks and Tabs become spaces, other control characters and escape
sequences are dropped, nothing is executed.
"""

from __future__ import annotations

import codecs
import re

from .width import char_width

ESC = "\x1b"
PASTE_END = "\x1b[201~"
ENABLE_PASTE, DISABLE_PASTE = "\x1b[?2004h", "\x1b[?2004l"
MAX_SEQUENCE_CHARS = 16

# What follows ESC in a CSI / SS3 sequence -> action name.
SEQUENCES = {
    "[A": "up", "[B": "down", "[C": "right", "[D": "left", "[H": "home", "[F": "end",
    "OA": "up", "OB": "down", "OC": "right", "OD": "left", "OH": "home", "OF": "end",
    "[1~": "home", "[7~": "home", "[4~": "end", "[8~": "end", "[3~": "delete",
    "[1;5C": "word-right", "[1;5D": "word-left", "[1;3C": "word-right", "[1;3D": "word-left",
    "[200~": "paste",
}
# ESC + one character (Alt/Meta + key) -> action name, readline's meanings.
ALT_KEYS = {
    "b": "word-left", "f": "word-right", "d": "kill-word-forward",
    "B": "word-left", "F": "word-right", "D": "kill-word-forward",
    "\x7f": "kill-word-back", "\x08": "kill-word-back",
}

_RUN = re.compile("[^\x00-\x1f\x7f-\x9f]+")
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
_PASTE_BREAKS = re.compile("\r\n|[\r\n\t]")
_COMPLETE_ESCAPE = re.compile("\x1b(?:\\[[0-?]*[ -/]*[@-~]|[^\\[])", re.DOTALL)
_PASTE_ESCAPES = re.compile("\x1b(?:\\[[0-?]*[ -/]*[@-~]?|.)?", re.DOTALL)


def insertable(text: str) -> str:
    """``text`` without what may not be typed: controls, and invisible characters
    that take room (bidi controls ...). Combining marks and U+200D stay."""
    if text.isprintable():
        return text
    return "".join(ch for ch in text
                   if ch.isprintable() or (ord(ch) >= 0xA0 and char_width(ch) == 0))


def clean_paste(text: str) -> str:
    """Pasted text as one line: breaks and Tabs -> spaces, escapes and controls dropped."""
    text = _PASTE_BREAKS.sub(" ", text)
    if ESC in text:
        text = _PASTE_ESCAPES.sub("", text)
    return insertable(_CONTROLS.sub("", text))


class KeyDecoder:
    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._escape = ""        # an escape sequence still arriving
        self._pasting = False
        self._held = ""          # what may be the start of the paste's end marker

    def feed(self, data: bytes) -> list[tuple[str, str]]:
        text = self._decoder.decode(data)
        if self._held:
            text, self._held = self._held + text, ""
        keys: list[tuple[str, str]] = []
        i, n = 0, len(text)
        while i < n:
            if self._pasting:
                i = self._paste(text, i, keys)
            elif self._escape:
                self._escape += text[i]
                i += 1
                self._maybe_finish_escape(keys)
            else:
                m = _RUN.match(text, i)
                if m is not None:
                    run = insertable(m.group())
                    if run:
                        keys.append(("text", run))
                    i = m.end()
                    continue
                ch = text[i]
                i += 1
                if ch == ESC:
                    self._escape = ch
                else:
                    keys.append(("key", ch))
        return keys

    def _maybe_finish_escape(self, keys: list) -> None:
        seq = self._escape[1:]
        first = seq[0]
        if first == ESC:
            self._escape = ESC          # a lone Escape press, then another sequence
            return
        if first not in "[O":
            self._escape = ""
            action = ALT_KEYS.get(first)
            if action is not None:
                keys.append(("action", action))
            return                      # an Alt key we do not know: ignored
        if len(seq) < 2:
            return
        if first == "O" or "\x40" <= seq[-1] <= "\x7e":
            self._escape = ""
            action = SEQUENCES.get(seq)
            if action == "paste":
                self._pasting = True
            elif action is not None:
                keys.append(("action", action))
        elif len(seq) > MAX_SEQUENCE_CHARS:
            self._escape = self._escape[:MAX_SEQUENCE_CHARS]  # unknown: swallow to its end

    def _paste(self, text: str, i: int, keys: list) -> int:
        end = text.find(PASTE_END, i)
        if end >= 0:
            chunk, after = text[i:end], end + len(PASTE_END)
            self._pasting = False
        else:
            # Hold back what the next read may complete: the end marker or another
            # escape sequence cut short, or a CR whose LF is still to come.
            stop = len(text)
            k = text.rfind(ESC, max(i, stop - MAX_SEQUENCE_CHARS))
            if k >= 0 and _COMPLETE_ESCAPE.match(text, k) is None:
                stop = k
            elif text.endswith("\r"):
                stop -= 1
            chunk, after, self._held = text[i:stop], len(text), text[stop:]
        cleaned = clean_paste(chunk)
        if cleaned:
            keys.append(("text", cleaned))
        return after

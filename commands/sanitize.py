"""Making peer text safe to show, and the rules for text we send.

Every byte a peer sends reaches the terminal through :func:`sanitize`. It
turns every character that could steer a terminal into a visible escape:

* C0 controls, DEL and C1 controls (category Cc, U+0000-U+001F, U+007F-U+009F):
  ESC, so no ANSI/OSC sequences (colours, titles, clipboard writes, cursor
  moves, screen clears); CR and BS, so no overwriting; U+009B, the 8-bit CSI;
* the bidi controls that reorder text ("Trojan Source", CVE-2021-42574):
  U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069;
* the line and paragraph separators U+2028 and U+2029.

Printable Unicode (é, 日, emoji with U+200D joiners, U+00A0) is kept:
``str.isprintable()`` would be the wrong filter, it rejects those too.
Invalid UTF-8 never gets this far: the line decoder has turned it into U+FFFD.
"""

from __future__ import annotations

import re

MAX_MESSAGE_CHARS = 100      # what `send` accepts, counted in code points
MAX_SHOWN_CHARS = 1000       # longer text from foreign clients is cut for display

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
                     "\u2028\u2029]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def sanitize(text: str) -> str:
    """Return ``text`` with every terminal-steering character made visible."""
    if _UNSAFE.search(text) is None:   # the common case: nothing to do
        return text
    return _UNSAFE.sub(_escape, text)


_ASCII_CONTROLS_BUT_NEWLINE = bytes(c for c in range(32) if c != 10) + b"\x7f"


def maybe_plain_ascii(text: str) -> bytes | None:
    """``text`` encoded, if it is printable ASCII lines (``"\n"`` allowed), else ``None``.

    The common case checked in bulk at C speed: deleting the control bytes
    must delete nothing.
    """
    if not text.isascii():
        return None
    raw = text.encode("ascii")
    return raw if len(raw.translate(None, _ASCII_CONTROLS_BUT_NEWLINE)) == len(raw) else None


def all_safe(texts: list[str]) -> bool:
    """True if no text of the list needs escaping (a quick check for many lines).

    Every character :func:`sanitize` escapes is also non-printable, so
    printable text is safe. (Some safe text is not printable, such as emoji
    joined by U+200D: it just takes the slow path.)
    """
    return (maybe_plain_ascii("\n".join(texts)) is not None
            or all(map(str.isprintable, texts)))


def maybe_unsafe_char(text: str) -> str | None:
    """The first character of ``text`` we refuse to send, escaped, or ``None``."""
    match = _UNSAFE.search(text)
    return _escape(match) if match else None


def maybe_invalid_byte(text: str) -> int | None:
    """The first undecodable byte of a line read with ``surrogateescape``, or ``None``."""
    if text.isascii():      # the common case, at C speed
        return None
    for ch in text:
        if "\udc80" <= ch <= "\udcff":
            return ord(ch) - 0xDC00
    return None

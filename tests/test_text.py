"""The sanitiser: peer text can never steer the terminal."""

from __future__ import annotations

import re

import pytest

from commands.sanitize import all_safe, maybe_invalid_byte, maybe_unsafe_char, sanitize
from commands.words import shorten

FORBIDDEN = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|"
                       rb"\xe2\x80[\x8e\x8f\xaa-\xae\xa8\xa9]|\xe2\x81[\xa6-\xa9]|\xd8\x9c")


@pytest.mark.parametrize("raw,shown", [
    ("\x1b]0;pwned\x07", r"\x1b]0;pwned\x07"),
    ("\x1b[2J", r"\x1b[2J"),
    ("a\rb\tc\nd", r"a\rb\tc\nd"),
    ("nul\x00bs\x08del\x7f", r"nul\x00bs\x08del\x7f"),
    ("\u009b2J", r"\x9b2J"),
    ("\u202egnp.exe", r"\u202egnp.exe"),
    ("\u2066\u2069\u061c\u200e\u200f", r"\u2066\u2069\u061c\u200e\u200f"),
    ("line\u2028para\u2029", r"line\u2028para\u2029"),
])
def test_controls_become_visible_escapes(raw, shown):
    assert sanitize(raw) == shown
    assert not FORBIDDEN.search(sanitize(raw).encode())


@pytest.mark.parametrize("text", ["café", "日本語", "👩\u200d👩\u200d👧", "non\u00a0breaking",
                                  "plain ascii, with punctuation!?"])
def test_ordinary_text_is_kept(text):
    assert sanitize(text) == text


def test_every_code_point_below_0x3000_is_safe_once_sanitized():
    text = "".join(map(chr, range(0x3000)))
    assert not FORBIDDEN.search(sanitize(text).encode("utf-8", "surrogatepass"))


def test_all_safe_agrees_with_sanitize():
    samples = ["ok", "x\x1b", "é", "\u202e", "a\u200db", "\u00a0"]
    for s in samples:
        if all_safe([s]):
            assert sanitize(s) == s


def test_shorten_marks_what_was_cut():
    assert shorten("x" * 10, 10) == "x" * 10
    assert shorten("x" * 15, 10) == "x" * 10 + " [cut: 5 more characters]"


def test_outgoing_checks():
    assert maybe_unsafe_char("hello") is None
    assert maybe_unsafe_char("a\x01b") == r"\x01"
    assert maybe_invalid_byte("ok") is None
    assert maybe_invalid_byte("bad\udcff") == 0xFF

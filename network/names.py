"""What a peer's name may be: the one rule, for names we set and names we are told.

A name is 1 to ``MAX_NAME_CHARS`` characters after NFC normalisation:
letters and digits of any script (``str.isalnum``), ``-``, ``_`` and ``.``.
Combining marks (Unicode categories Mn, Mc, Me) are allowed *after* a letter or
digit, at most ``MAX_MARKS_IN_A_ROW`` in a row: scripts such as Devanagari
need them (अनिल has a vowel sign), and the cap keeps "Zalgo" stacks out.
A name is never all digits (it would read as a connection id) and is never
``all`` (``send all``); ``:`` is not allowed (it would read as ``ip:port``).
Spaces, control characters and everything else are refused.

Names are labels, not proof: anyone can announce any name.
"""

from __future__ import annotations

import unicodedata

from .outcomes import NameProblem

MAX_NAME_CHARS = 32
MAX_MARKS_IN_A_ROW = 3
_PUNCTUATION = frozenset("-_.")
RESERVED = frozenset({"all"})


class BadName(Exception):
    """A name that breaks the rule: ``problem`` says which part, ``char`` the culprit."""

    def __init__(self, problem: NameProblem, char: str = "") -> None:
        super().__init__(problem.value)
        self.problem = problem
        self.char = char


def check_name(text: str) -> str:
    """``text`` as a name (NFC-normalised), or :class:`BadName`."""
    if len(text) > 4 * MAX_NAME_CHARS:       # do not normalise a novel
        raise BadName(NameProblem.TOO_LONG)
    name = unicodedata.normalize("NFC", text)
    if not name:
        raise BadName(NameProblem.EMPTY)
    if len(name) > MAX_NAME_CHARS:
        raise BadName(NameProblem.TOO_LONG)
    marks = 0
    for index, ch in enumerate(name):
        if ch.isalnum() or ch in _PUNCTUATION:
            marks = 0
            continue
        if unicodedata.category(ch) in ("Mn", "Mc", "Me"):
            marks += 1
            base = index - marks           # the character the marks sit on
            if marks <= MAX_MARKS_IN_A_ROW and base >= 0 and name[base].isalnum():
                continue
        raise BadName(NameProblem.CHARACTER, ch)
    if name.isdecimal():
        raise BadName(NameProblem.DIGITS)
    if name.casefold() in RESERVED:
        raise BadName(NameProblem.RESERVED)
    return name


def maybe_name(text: str) -> str | None:
    """``text`` as a name, or ``None`` if it is not one."""
    try:
        return check_name(text)
    except BadName:
        return None

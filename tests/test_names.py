"""The name rule: one function for names we set and names we are told."""

import pytest

from network.names import MAX_NAME_CHARS, BadName, check_name
from network.outcomes import NameProblem


@pytest.mark.parametrize("text,name", [
    ("alice", "alice"), ("Bob_2", "Bob_2"), ("j.doe-x", "j.doe-x"), ("日本.太郎", "日本.太郎"),
    ("अनिल", "अनिल"),                       # a vowel sign (Mc) after a letter
    ("e\u0301", "\u00e9"),                  # NFC: one character
    ("x" * MAX_NAME_CHARS, "x" * MAX_NAME_CHARS), ("10.0.0.7", "10.0.0.7"), ("a1", "a1"),
])
def test_names_of_any_script(text, name):
    assert check_name(text) == name


@pytest.mark.parametrize("text,problem,char", [
    ("", NameProblem.EMPTY, ""),
    ("x" * (MAX_NAME_CHARS + 1), NameProblem.TOO_LONG, ""),
    ("x" * 10_000, NameProblem.TOO_LONG, ""),
    ("alice bob", NameProblem.CHARACTER, " "),
    ("a\x1b[31m", NameProblem.CHARACTER, "\x1b"),
    ("a:1", NameProblem.CHARACTER, ":"),
    ("a\u202eb", NameProblem.CHARACTER, "\u202e"),
    ("\u0301a", NameProblem.CHARACTER, "\u0301"),          # a mark on nothing
    ("-\u0301", NameProblem.CHARACTER, "\u0301"),          # a mark on punctuation
    ("o" + "\u0301" * 5, NameProblem.CHARACTER, "\u0301"),  # a stack of marks
    ("42", NameProblem.DIGITS, ""), ("٤٢", NameProblem.DIGITS, ""),
    ("all", NameProblem.RESERVED, ""), ("ALL", NameProblem.RESERVED, ""),
])
def test_what_is_not_a_name(text, problem, char):
    with pytest.raises(BadName) as caught:
        check_name(text)
    assert caught.value.problem is problem and caught.value.char == char

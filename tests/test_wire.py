"""The control lines of our protocol."""

from __future__ import annotations

from network import wire


def test_hello_round_trip():
    line = wire.hello_line(9090, "abcdef0123456789")
    assert line == "\x01HELLO chat/1 port=9090 node=abcdef0123456789"
    assert wire.is_control(line)
    verb, words = wire.split_control(line)
    assert verb == wire.HELLO
    hello = wire.maybe_parse_hello(words)
    assert hello == wire.Hello(9090, "abcdef0123456789", "chat/1")


def test_unknown_fields_are_ignored_and_later_versions_accepted():
    hello = wire.maybe_parse_hello(["chat/2", "port=1", "node=ab", "colour=blue", "junk"])
    assert hello == wire.Hello(1, "ab", "chat/2")


def test_unusable_hellos_are_refused():
    for words in ([], ["irc/1", "port=1", "node=a"], ["chat/1", "port=0", "node=a"],
                  ["chat/1", "port=70000", "node=a"], ["chat/1", "port=x", "node=a"],
                  ["chat/1", "port=5"], ["chat/1", "port=5", "node=\x1b[2J"],
                  ["chat/1", "port=5", "node=" + "a" * 65]):
        assert wire.maybe_parse_hello(words) is None, words


def test_plain_text_is_never_control():
    assert not wire.is_control("HELLO chat/1 port=1 node=a")
    assert wire.split_control("\x01") == ("", [])
    assert wire.split_control("\x01bye") == ("BYE", [])

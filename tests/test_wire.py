"""The wire format: control lines, and a hello parser that takes nothing on trust."""

from __future__ import annotations

import pytest


from network import wire
from commands import words as sentences
from network.outcomes import HelloFault, HelloProblem, Refusal

NODE = "abcdef0123456789"


def words(line: str) -> list:
    verb, rest = wire.split_control(line)
    assert verb == wire.HELLO
    return rest


def test_hello_round_trip():
    hello = wire.Hello(9090, NODE, 15000)
    line = wire.hello_line(hello)
    assert line == f"\x01HELLO chat/2 port=9090 node={NODE} heartbeat=15000"
    assert wire.is_control(line)
    assert wire.parse_hello(words(line)) == hello


def test_unknown_fields_are_allowed_once_each_for_later_versions():
    hello = wire.parse_hello(["chat/2", "port=1", f"node={NODE}", "heartbeat=100",
                              "colour=blue"])
    assert hello == wire.Hello(1, NODE, 100)


@pytest.mark.parametrize("fields,detail", [
    (["port=٨٠٨٠"], "port is not a number"),            # Arabic-Indic digits
    (["port=+22"], "port is not a number"),
    (["port=6_5_5_3_5"], "port is not a number"),
    (["port=-1"], "port is not a number"),
    (["port= 80"], "port is not a number"),
    (["port=0"], "port 0 is out of range"),
    (["port=65536"], "port 65536 is out of range"),
    (["port=99999999999"], "port is not a number"),
    (["heartbeat=99"], "heartbeat 99 is out of range"),
    (["heartbeat=1e3"], "heartbeat is not a number"),
    (["node=ABCDEF0123456789"], "node is not 16 hex digits"),
    (["node=abc"], "node is not 16 hex digits"),
    (["node=\x1b[2J456789abcdef"], "node is not 16 hex digits"),
    (["port=1", "port=2"], "port appears twice"),
    (["colour=a", "colour=b"], "colour appears twice"),
    (["junk"], "a field is not key=value"),
    (["=5"], "a field is not key=value"),
])
def test_malformed_hellos_are_refused_not_guessed(fields, detail):
    # A good hello, with the fields under test in place of (or beside) its own.
    replaced = {field.partition("=")[0] for field in fields}
    given = [f for f in ("port=9090", f"node={NODE}", "heartbeat=15000")
             if f.partition("=")[0] not in replaced] + fields
    with pytest.raises(wire.BadHello) as caught:
        wire.parse_hello(["chat/2", *given])
    assert caught.value.refusal is Refusal.MALFORMED
    assert sentences.hello_fault(caught.value.fault) == detail


def test_every_field_is_required():
    for missing in ("port", "node", "heartbeat"):
        fields = [f for f in ("port=1", f"node={NODE}", "heartbeat=1000")
                  if not f.startswith(missing)]
        with pytest.raises(wire.BadHello) as caught:
            wire.parse_hello(["chat/2", *fields])
        assert caught.value.fault == HelloFault(HelloProblem.MISSING, missing)
        assert sentences.hello_fault(caught.value.fault) == f"{missing} is missing"


def test_other_versions_get_a_version_refusal_naming_ours():
    for version in ("chat/1", "chat/3", "chat/2.1", "chat/"):
        with pytest.raises(wire.BadHello) as caught:
            wire.parse_hello([version, "port=1", f"node={NODE}", "heartbeat=1000"])
        assert caught.value.refusal is Refusal.VERSION
    with pytest.raises(wire.BadHello) as caught:
        wire.parse_hello(["irc/1"])
    assert caught.value.refusal is Refusal.MALFORMED
    assert wire.refuse_line(Refusal.VERSION, " ".join(wire.VERSIONS)) == \
        "\x01REFUSE version chat/2"


def test_refusals_round_trip_and_unknown_ones_keep_their_words():
    assert wire.parse_refuse(["full", "100"]) == wire.PeerRefusal(Refusal.FULL, 100, "full 100")
    assert wire.parse_refuse(["busy", "10"]).limit == 10
    assert wire.parse_refuse(["full", "١٠٠"]).limit == 0      # not ASCII digits: no limit
    assert wire.parse_refuse(["self"]).refusal is Refusal.SELF
    odd = wire.parse_refuse(["weather", "is", "bad"])
    assert odd.refusal is None and odd.detail == "weather is bad"


def test_plain_text_is_never_control():
    assert not wire.is_control("HELLO chat/2 port=1 node=a")
    assert wire.split_control("\x01") == ("", [])
    assert wire.split_control("\x01BYE") == ("BYE", [])
    assert wire.split_control("\x01bye") == ("bye", [])     # verbs are case-sensitive now


# -- names ------------------------------------------------------------------------------------

def test_a_name_rides_in_the_hello_and_round_trips():
    hello = wire.Hello(9090, NODE, 15000, name="日本.太郎")
    line = wire.hello_line(hello)
    assert line.endswith(" name=日本.太郎")
    assert wire.parse_hello(words(line)) == hello
    assert "name=" not in wire.hello_line(wire.Hello(9090, NODE, 15000))   # none: no field


@pytest.mark.parametrize("text", ["\x1b[31mred", "x" * 33, "1234", "all", "a:b", "",
                                  "\u0301accent", "zalgo" + "\u0301" * 5])
def test_a_bad_name_is_not_a_malformed_hello_it_is_no_name(text):
    hello = wire.parse_hello(["chat/2", "port=1", f"node={NODE}", "heartbeat=100",
                              f"name={text}"])
    assert hello.name is None and hello.bad_name == text


def test_a_name_field_may_appear_once_and_the_refused_text_is_kept_short():
    with pytest.raises(wire.BadHello) as caught:
        wire.parse_hello(["chat/2", "port=1", f"node={NODE}", "heartbeat=100", "name=a",
                          "name=b"])
    assert sentences.hello_fault(caught.value.fault) == "name appears twice"
    assert wire.parse_name("y" * 500) == (None, "y" * wire.MAX_BAD_NAME_CHARS)
    assert wire.parse_name("e\u0301") == ("\u00e9", None)          # NFC
    assert wire.name_line("bob") == "\x01NAME bob" and wire.name_line(None) == "\x01NAME"


def test_framing_is_utf8_and_a_newline_one_line_or_several():
    assert wire.frame("日本 hi") == "日本 hi\n".encode()
    assert wire.frame_lines(["a", "日本"]) == wire.frame("a") + wire.frame("日本")
    from reactor.lines import LineCodec
    assert LineCodec().feed(wire.frame_lines(["a", "日本", ""])) == ["a", "日本", ""]

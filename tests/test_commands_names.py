"""Names, send all, timestamps and the words people try first, against a fake node."""

import pytest

from helpers import MemorySink

from commands import Console
from commands.completion import make_completer
from commands.messaging import MAX_UNCONFIRMED_BROADCASTS
from network.names import BadName, check_name
from network.outcomes import Declined, Direction, PeerInfo, Refusal, Refused
from test_commands import Harness


def named(peer_id, name, host="127.0.0.2", port=8000, speaks=True):
    return PeerInfo(peer_id, host, port + peer_id, Direction.INCOMING, speaks, None, name)


class NamedNode:
    """The fake node of test_commands, with names and send_to_all."""

    def __init__(self, node):
        self.__dict__.update(node.__dict__)
        self._node = node
        self.name = "me"
        self.table = {1: named(1, "alice"), 2: named(2, "Bob"), 3: named(3, None, speaks=False),
                      5: named(5, "bob")}
        node.table = self.table
        self.broadcasts = []       # (text, done)

    def __getattr__(self, attr):
        return getattr(self._node, attr)

    def send_to_all(self, text, done):
        self.broadcasts.append((text, lambda missed: done(len(self.table), missed)))

    def set_name(self, name):
        try:
            self.name = check_name(name)
        except BadName as exc:
            raise Refused(Declined.BAD_NAME, problem=exc.problem, detail=exc.char) from None
        return 2


@pytest.fixture
def h():
    harness = Harness()
    harness.node = NamedNode(harness.node)
    harness.runner.context.node = harness.node
    return harness


def test_names_are_shown_in_list_and_on_every_line(h):
    h.run("list")
    assert h.out() == ["id  name   address         connection                 trust",
                       " 1  alice  127.0.0.2:8001  it connected               plain",
                       " 2  Bob    127.0.0.2:8002  it connected               plain",
                       " 3  -      127.0.0.2:8003  it connected, not chat.py  plain",
                       " 5  bob    127.0.0.2:8005  it connected               plain"]
    h.console.messages_received(h.node.table[1], ["hi", "there"])
    h.console.messages_received(h.node.table[3], ["from nc"])
    h.console.peer_renamed(h.node.table[1], named(1, "alicia"))
    h.console.peer_renamed(h.node.table[2], named(2, None))
    h.console.bad_name(h.node.table[3], "\x1b[2Jevil")
    h.turn()
    assert h.out()[5:] == [
        "message from peer 1 alice (127.0.0.2:8001): hi",
        "message from peer 1 alice (127.0.0.2:8001): there",
        "message from peer 3 (127.0.0.2:8003): from nc",
        "peer 1 alice (127.0.0.2:8001) is now known as alicia",
        "peer 2 Bob (127.0.0.2:8002) no longer has a name",
        'peer 3 (127.0.0.2:8003) announced "\\x1b[2Jevil" as its name; that is not a name, '
        "so it is shown without one"]


def test_send_and_terminate_by_name(h):
    h.run("send ALICE hi", "send bob hi", "terminate nobody")
    assert h.node.calls == [("send", 1, "hi")]
    h.node.pending.pop(0)(True)
    h.turn()
    assert h.out() == ["sent to peer 1 alice (127.0.0.2:8001): hi"]
    assert h.err() == ['error: "bob" names 2 connections (ids 2, 5); use an id',
                       'error: no connection with id or name "nobody"; type "list" to see the '
                       'connections']


def test_send_all_confirms_once_with_who_did_not_get_it(h):
    h.run("send all hi", "send ALL there", "myport")
    assert [b[0] for b in h.node.broadcasts] == ["hi", "there"]
    assert h.out() == ["listening port: 9090"]          # a slow peer holds nobody up
    h.node.broadcasts[0][1]([])
    h.node.broadcasts[1][1]([h.node.table[3]])
    h.turn()
    assert h.out()[1:] == [
        "sent to 4 connections: hi",
        "sent to 3 of 4 connections (not to peer 3 (127.0.0.2:8003): it closed first): there"]
    h.run("send all lost")
    h.node.broadcasts[2][1](list(h.node.table.values()))
    h.turn()
    assert h.err() == ["error: the message was not sent: 4 connections closed first"]
    h.node.table.clear()
    h.run("send all anyone")
    h.node.broadcasts[3][1]([])                      # nobody was there
    h.turn()
    assert h.err()[-1] == ('error: no connections to send to; open one with '
                           '"connect <ip> <port>"')


def test_send_all_waits_only_when_a_slow_peer_is_far_behind(h):
    h.runner.submit(["send all m"] * (MAX_UNCONFIRMED_BROADCASTS + 5))
    h.turn()
    assert len(h.node.broadcasts) == MAX_UNCONFIRMED_BROADCASTS      # then it holds
    h.node.broadcasts[0][1]([])
    h.turn()
    assert len(h.node.broadcasts) == MAX_UNCONFIRMED_BROADCASTS + 1  # one out, one in


def test_name_command(h):
    h.run("name", "name alicia", "name al ice", "name " + "x" * 33, "name 42", "name all")
    assert h.out() == ["your name: me", "you are now known as alicia (told 2 chat.py peers)"]
    rule = ('a name is 1 to 32 letters or digits (any script), "-", "_" or ".", not all '
            'digits and not "all"')
    assert h.err() == [
        f'error: "al ice" cannot be a name: it contains a space; {rule}',
        f'error: "{"x" * 33}" cannot be a name: it is too long; {rule}',
        f'error: "42" cannot be a name: it is all digits (that reads as an id); {rule}',
        f'error: "all" cannot be a name: it is "all" (send all means everyone); {rule}']


def test_words_people_try_first(h):
    h.run("# a comment", "   # indented", "", "?", "quit")
    assert h.err() == []
    assert h.out()[0] == "commands:" and h.exits == 1
    assert "  exit (quit)" in "\n".join(h.out()) and "  help (?) [command]" in h.out()[1]
    h.run("connect 10.0.0.9:7000", "connect 10.0.0.9", "help quit")
    assert h.node.calls[-1] == ("connect", "10.0.0.9", 7000)
    h.node.pending.pop(0)(True)
    h.turn()
    assert h.err() == ['error: "connect" needs more arguments; usage: connect <ip> <port>']
    assert h.out()[-3:] == ["usage: exit", "  send what is queued, close every connection, quit",
                            "  also: quit"]


def test_help_fits_80_columns(h):
    h.run("help", *[f"help {c.name}" for c in h.registry])
    assert h.out() and max(map(len, h.out())) <= 80


def test_completion_offers_ids_names_and_all(h):
    complete = make_completer(h.registry, h.node.peers)
    assert complete("send ") == ["1", "2", "3", "5", "Bob", "alice", "bob", "all"]
    assert complete("send a") == ["alice", "all"]
    assert complete("terminate a") == ["alice"]


def test_timestamps_once_per_batch_on_events_and_messages():
    written, calls = [], []

    def clock():
        calls.append(1)
        return 1_700_000_000.5
    sink = MemorySink(1, written)
    console = Console(sink, timestamps=True, clock=clock)
    console.messages_received(named(1, "alice"), ["a", "b", "c"])
    console.peer_connected(named(2, None))
    console.info("listening port: 1")                # command output: no time
    console.flush()
    lines = b"".join(data for _, data in written).decode().splitlines()
    import time
    stamp = time.strftime("[%H:%M:%S] ", time.localtime(1_700_000_000))
    assert lines == [stamp + "message from peer 1 alice (127.0.0.2:8001): a",
                     stamp + "message from peer 1 alice (127.0.0.2:8001): b",
                     stamp + "message from peer 1 alice (127.0.0.2:8001): c",
                     stamp + "peer 2 (127.0.0.2:8002) connected to you",
                     "listening port: 1"]
    assert len(calls) == 2                           # one clock read per batch, not per line

"""The registry, every command and the queue, against a fake node and a recording console."""

from __future__ import annotations

import errno

import pytest

from commands import CommandRunner, Console, default_registry
from commands.base import Command, CommandError
from commands.registry import CommandRegistry
from network.outcomes import (AddressProblem, Declined, Direction, PeerInfo, Posted, Refusal,
                              Refused)
from helpers import MemorySink


def Peer(peer_id, host, port, direction=Direction.OUTGOING, speaks_protocol=True):
    return PeerInfo(peer_id, host, port, direction, speaks_protocol)


class FakeNode:
    port = 9090

    def __init__(self):
        self.table = {1: Peer(1, "10.0.0.2", 8080),
                      3: Peer(3, "10.0.0.3", 7070, Direction.INCOMING, False)}
        self.calls = []
        self.pending = []        # done callbacks not called yet
        self.later = None        # how it calls one itself: later, as the node does

    def my_ipv6(self):
        return None

    def my_ip(self):
        return "10.0.0.1"

    def short_id(self, fingerprint):
        return fingerprint.hex()[:7].upper()

    def peers(self):
        return list(self.table.values())

    def peer(self, peer_id):
        return self.table.get(peer_id)

    def peer_at(self, host, port):
        return next((p for p in self.table.values() if (p.host, p.port) == (host, port)), None)

    def connect(self, host, port, done):
        self.calls.append(("connect", host, port))
        if host == "bad":
            raise Refused(Declined.ADDRESS, address=AddressProblem.UNKNOWN_HOST)
        existing = self.peer_at(host, port)
        if existing is not None:
            raise Refused(Declined.DUPLICATE, peer_id=existing.id)
        self.pending.append(done)
        return host, 4

    def cancel_connect(self):
        self.calls.append(("cancel_connect",))
        if not self.pending:
            return None
        done = self.pending.pop(0)
        self.later(lambda: done(False))
        return ("10.0.0.9", 7000)

    def terminate(self, peer_id):
        self.calls.append(("terminate", peer_id))
        return self.table.pop(peer_id)

    def send(self, peer_id, text, done):
        self.calls.append(("send", peer_id, text))
        # The tests settle it as True (in the buffer) or False (the connection ended).
        self.pending.append(lambda ok: done(Posted.WRITTEN if ok else Posted.LOST))

    def trusted_named(self, name):
        return None


class Harness:
    def __init__(self):
        self.written = []
        self.console = Console(MemorySink(1, self.written), MemorySink(2, self.written))
        self.node = FakeNode()
        self.registry = default_registry()
        self.deferred = []
        self.node.later = self.deferred.append
        self.ended = 0
        self.paused = self.resumed = 0
        self.exits = 0
        self.runner = CommandRunner(self.registry, self.deferred.append, self._end, self.node,
                                    self.console, request_exit=self._exit)
        self.runner.set_input_flow(pause=self._pause, resume=self._resume)

    def _end(self):
        self.ended += 1

    def _pause(self):
        self.paused += 1

    def _resume(self):
        self.resumed += 1

    def _exit(self):
        self.exits += 1

    def run(self, *lines):
        self.runner.submit(list(lines))
        self.turn()

    def turn(self):
        while self.deferred:
            self.deferred.pop(0)()
        self.console.flush()

    def out(self):
        return b"".join(d for fd, d in self.written if fd == 1).decode().splitlines()

    def err(self):
        return b"".join(d for fd, d in self.written if fd == 2).decode().splitlines()


@pytest.fixture
def h():
    return Harness()


def test_help_is_generated_from_the_registry(h):
    h.run("help")
    out = h.out()
    assert out[0] == "commands:"
    for command in h.registry:
        assert any(line.startswith(f"  {command.name} ") and line.endswith(command.summary)
                   and command.usage in line for line in out), command.name
    assert out[-1] == 'type "help <command>" for more about one command'
    h.run("help send")
    assert "usage: send <id> <message>" in h.out()


def test_info_commands(h):
    h.run("myip", "  myport  ", "", "   ")
    assert h.out() == ["IP address: 10.0.0.1", "listening port: 9090"]
    assert h.err() == []


def test_list(h):
    h.run("list")
    assert h.out() == ["id  name  address        connection                 trust",
                       " 1  -     10.0.0.2:8080  you connected              plain",
                       " 3  -     10.0.0.3:7070  it connected, not chat.py  plain"]
    h.node.table.clear()
    h.run("list")
    assert h.out()[-1] == 'no connections; open one with "connect <ip> <port>"'


@pytest.mark.parametrize("line,error", [
    ("frobnicate", 'unknown command "frobnicate"; type "help" to see the commands'),
    ("lsit", 'unknown command "lsit"; did you mean "list"? type "help" to see the commands'),
    ("myport now", '"myport" takes no arguments; usage: myport'),
    ("send", '"send" needs more arguments; usage: send <id> <message>'),
    ("send 1", "empty message; usage: send <id> <message>"),
    ("send one hi", 'no connection with id or name "one"; type "list" to see the connections'),
    ("send -1 hi", 'no connection with id or name "-1"; type "list" to see the connections'),
    ("send 2 hi", 'no connection with id 2; type "list" to see the connections'),
    ("send 1 " + "a" * 101, "message is 101 characters long; the limit is 100 (nothing was sent)"),
    ("send 1 esc\x1b[2J", r"messages cannot contain control characters (found \x1b); "
                          "nothing was sent"),
    ("send 1 \x01HELLO chat/1", r"messages cannot contain control characters (found \x01); "
                                "nothing was sent"),
    ("terminate", '"terminate" needs more arguments; usage: terminate <id>'),
    ("terminate 1 2", '"terminate" takes at most 1 argument; usage: terminate <id>'),
    ("terminate x", 'no connection with id or name "x"; type "list" to see the connections'),
    ("connect 1.2.3.4", '"connect" needs more arguments; usage: connect <ip> <port>'),
    ("connect 1.2.3.4 abc", '"abc" is not a port; a port is a number from 1 to 65535'),
    ("connect 1.2.3.4 0", '"0" is not a port; a port is a number from 1 to 65535'),
    ("connect 1.2.3.4 70000", '"70000" is not a port; a port is a number from 1 to 65535'),
    ("connect bad 80", "cannot connect to bad:80: unknown host (the resolver does not know "
                       "that name)"),
    ("send 10.0.0.2:9 hi", 'no connection with 10.0.0.2:9; type "list" to see the connections'),
    ("send 10.0.0.2:x hi", '"x" is not a port; a port is a number from 1 to 65535'),
    ("help nothing", 'unknown command "nothing"; type "help" to see the commands'),
    ("x\x1b]0;PWNED\x07\x1b[2J", r'unknown command "x\x1b]0;PWNED\x07\x1b[2J"; type "help" '
                                  'to see the commands'),
    ("send \u202eid hi", r'no connection with id or name "\u202eid"; type "list" to see '
                         'the connections'),
    ("help \x1b[31m", r'unknown command "\x1b[31m"; type "help" to see the commands'),
])
def test_mistakes_are_one_error_line(h, line, error):
    h.run(line)
    assert h.err() == [f"error: {error}"]
    assert h.out() == []
    assert all(call[0] == "connect" for call in h.node.calls)  # nothing was sent


def test_send_counts_code_points_and_keeps_inner_spaces(h):
    h.run("send 1 " + "é" * 100, "send 1 日本  語")
    assert h.node.calls == [("send", 1, "é" * 100)]   # the second waits for the first
    h.node.pending.pop(0)(True)
    h.turn()
    assert h.node.calls[-1] == ("send", 1, "日本  語")
    h.node.pending.pop(0)(True)
    h.turn()
    assert h.out() == ["sent to peer 1 (10.0.0.2:8080): " + "é" * 100,
                       "sent to peer 1 (10.0.0.2:8080): 日本  語"]


def test_a_send_that_never_got_out_says_so(h):
    h.run("send 1 hi", "myport")
    h.node.pending.pop(0)(False)
    h.turn()
    assert h.err() == ["error: message to peer 1 was not sent: the connection closed first"]
    assert h.out() == ["listening port: 9090"]


def test_connect_holds_the_queue_until_done(h):
    h.run("connect 10.0.0.9 7000", "list", "myport")
    assert h.out() == ["connecting to 10.0.0.9:7000 as peer 4 ..."]
    h.node.pending.pop(0)(True)
    h.turn()
    assert h.out()[1].startswith("id") and h.out()[-1] == "listening port: 9090"


def test_terminate(h):
    h.run("terminate 3", "terminate 3")
    assert h.out() == ["closed the connection to peer 3 (10.0.0.3:7070)"]
    assert h.err() == ['error: no connection with id 3; type "list" to see the connections']


def test_a_peer_can_be_named_by_the_address_list_shows(h):
    h.run("send 10.0.0.2:8080 by address", "terminate 10.0.0.3:7070")
    assert h.node.calls == [("send", 1, "by address")]
    h.node.pending.pop(0)(True)
    h.turn()
    assert h.out() == ["sent to peer 1 (10.0.0.2:8080): by address",
                       "closed the connection to peer 3 (10.0.0.3:7070)"]


def test_connecting_to_a_peer_we_have_is_said_not_an_error(h):
    h.run("connect 10.0.0.2 8080", "myport")
    assert h.out() == ["already connected to 10.0.0.2:8080 as peer 1", "listening port: 9090"]
    assert h.err() == []


def test_exit_and_end_of_input_run_after_what_is_queued(h):
    h.run("connect 10.0.0.9 7000", "exit")
    h.runner.end_of_input()
    assert h.exits == 0 and h.ended == 0
    h.node.pending.pop(0)(True)
    h.turn()
    assert h.exits == 1 and h.ended == 1


def test_invalid_utf8_and_overlong_input_lines(h):
    class TooLong:
        nbytes = 5000
    h.run("send 1 caf\udce9", TooLong(), "myport")
    assert h.err() == ["error: input is not valid UTF-8 (byte 0xe9); the line was ignored",
                       "error: input line too long (5000 bytes or more); it was ignored"]
    assert h.out() == ["listening port: 9090"]


def test_input_pauses_when_the_queue_is_long_and_resumes(h):
    h.run("connect 10.0.0.9 7000")
    h.runner.submit(["myport"] * 1500)
    assert h.paused == 1 and h.resumed == 0
    h.node.pending.pop(0)(True)
    h.turn()
    assert h.resumed == 1
    assert h.out().count("listening port: 9090") == 1500


def test_a_crashing_command_does_not_wedge_the_queue(h):
    class Broken(Command):
        name = "broken"

        def run(self, ctx, args):
            ctx.hold()
            raise RuntimeError("boom")

    h.registry.add(Broken())
    h.run("broken", "myport")
    assert h.err() == ["error: internal error while running 'broken': RuntimeError: boom"]
    assert h.out() == ["listening port: 9090"]


def test_registry_refuses_duplicates_and_keeps_order():
    registry = CommandRegistry()

    class A(Command):
        name = "a"
    registry.add(A())
    with pytest.raises(ValueError):
        registry.add(A())
    assert registry.names() == ["a"]
    with pytest.raises(CommandError):
        registry.split("b")
    assert default_registry().names() == ["help", "myip", "myport", "myid", "connect", "list", "nearby",
                                          "terminate", "send", "name", "history", "trust",
                                          "untrust", "exit"]


def test_console_stops_writing_when_stdout_is_gone():
    written = []
    out = MemorySink(1, written)
    console = Console(out, MemorySink(2, written))
    console.info("one")
    console.flush()
    out.closed = True
    console.info("two")
    console.error("still said")
    console.flush()
    assert console.output_closed
    assert written == [(1, b"one\n"), (2, b"error: still said\n")]


def test_console_close_counts_what_stdout_never_took():
    written = []
    out, err = MemorySink(1, written), MemorySink(2, written)
    out.unwritten = 12345
    Console(out, err).close()
    assert written == [(2, b"error: 12345 bytes of output could not be written: "
                           b"stdout is not being read\n")]
    assert out.closed and err.closed
    # A lost stdout (a closed pipe) is not worth a word; nor is a stdout that took it all.
    written.clear()
    out, err = MemorySink(1, written), MemorySink(2, written)
    out.lost = OSError(errno.ENOSPC, "No space left on device")
    Console(out, err).close()
    assert written == [(2, b"error: could not write to stdout: No space left on device\n")]
    for unwritten, lost in ((5, BrokenPipeError(errno.EPIPE, "Broken pipe")), (0, None)):
        written.clear()
        out, err = MemorySink(1, written), MemorySink(2, written)
        out.unwritten, out.lost = unwritten, lost
        Console(out, err).close()
        assert written == []


def test_console_escapes_what_the_stream_cannot_encode():
    written = []
    console = Console(MemorySink(1, written), encoding="ascii")
    console.info("café 日本")
    console.flush()
    assert written == [(1, b"caf\\xe9 \\u65e5\\u672c\n")]


def test_myip_on_a_machine_with_loopback_only_says_nobody_else_can_reach_it(h):
    h.node.my_ip = lambda: "127.0.0.1"
    h.run("myip")
    assert h.out() == ["IP address: 127.0.0.1 (this machine has no network address besides "
                       "loopback: no other machine can reach this peer)"]


def test_plurals_agree_with_their_counts():
    from commands.words import plural
    assert plural(1, "connection") == "1 connection"
    assert plural(2, "connection") == "2 connections"
    assert plural(0, "argument") == "0 arguments"
    written = []
    console = Console(MemorySink(1, written), MemorySink(2, written))
    console.incoming_refused(None, Refusal.FULL, 1, 5)
    console.incoming_refused(None, Refusal.FULL, 3, 5)
    console.flush()
    text = b"".join(data for _, data in written).decode()
    assert "refused 1 more connection in" in text and "refused 3 more connections in" in text
    import pathlib
    root = pathlib.Path(__file__).resolve().parent.parent
    for path in list((root / "commands").rglob("*.py")) + [root / "chat.py"]:
        assert "(s)" not in path.read_text(), path


def test_ctrl_c_cancels_only_a_pending_connect_and_the_queue_goes_on(h):
    from commands.session import cancel_pending_connect
    from commands.terminal.lineedit import LineEditor
    from commands.terminal.screen import Screen
    # At a terminal (the screen's own drawing goes elsewhere here).
    h.console.screen = Screen(LineEditor(), lambda text: None, columns=lambda: 80)
    h.run("connect 10.0.0.9 7000", "myport", "list", "myport")
    # myport only reports: it answers at once; list waits, and the myport behind it too
    assert h.out() == ["connecting to 10.0.0.9:7000 as peer 4 ... (Ctrl-C to cancel)",
                       "listening port: 9090"]
    h.console.screen = None
    assert cancel_pending_connect(h.node, h.console) is True
    h.turn()
    assert h.out()[2] == "cancelled the connection to 10.0.0.9:7000"
    assert h.out()[-1] == "listening port: 9090" and len(h.out()) > 4
    assert h.err() == []
    assert cancel_pending_connect(h.node, h.console) is False   # nothing pending: not taken


def test_completion_after_help_offers_command_names():
    from commands.completion import make_completer
    complete = make_completer(default_registry(), FakeNode().peers)
    assert complete("help s") == ["send"]
    assert complete("help my") == ["myip", "myport", "myid"]
    assert complete("send ") == ["1", "3", "all"]
    assert complete("terminate ") == ["1", "3"]
    assert complete("list ") == []


def test_a_paused_runner_keeps_every_line_and_runs_them_in_order_on_resume(h):
    h.runner.pause()                     # stdout is far behind: run nothing for now
    h.runner.pause()                     # and stderr too
    h.run("myport", "myip", "myport")
    assert h.out() == []
    h.run(*["myport"] * 1500)            # the queue bound still pauses input meanwhile
    assert h.paused == 1 and h.resumed == 0
    h.runner.resume()
    h.turn()
    assert h.out() == []                 # one of them is still behind
    h.runner.resume()
    h.turn()
    out = h.out()
    assert out[0] == out[2] == "listening port: 9090" and out[1] == "IP address: 10.0.0.1"
    assert len(h.out()) == 1503 and h.resumed == 1

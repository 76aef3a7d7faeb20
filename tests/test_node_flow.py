"""Node.pause_reading / resume_reading in-process: stop reading peers, keep them alive."""

from __future__ import annotations

import socket

from helpers import recv_line
from network import Node, NodeOptions
from network import wire
from network.outcomes import CloseReason
from network.peer_protocol import Timing
from reactor.loop import Reactor
from virtualtime import run_reactor_until


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Recorder:
    def __init__(self):
        self.connected, self.lost, self.messages = [], [], []

    def peer_connected(self, info):
        self.connected.append(info.id)

    def peer_lost(self, info, lost):
        self.lost.append((info.id, lost.reason))

    def messages_received(self, info, texts):
        self.messages.extend(texts)

    def __getattr__(self, name):       # the rest of the observer interface: not needed here
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: None


def turn(reactor):
    """One loop turn that does not sleep (the fake clock decides what is due)."""
    reactor.call_soon(lambda: None)
    reactor.run_once()


def start(clock=None):
    reactor = Reactor(clock=clock) if clock else Reactor()
    observer = Recorder()
    node = Node(reactor, observer, NodeOptions(heartbeat_s=1.0, timing=Timing(hello_wait_s=0.2, answer_wait_s=0.2)))
    node.listen("127.0.0.1", 0)
    return reactor, node, observer


def chat_peer(node, reactor, observer, expect_id):
    """A socket that speaks our protocol (sends a hello), established as ``expect_id``."""
    s = socket.create_connection(("127.0.0.1", node.port), timeout=5)
    s.sendall((wire.hello_line(wire.Hello(1, "f" * 16, 1000)) + "\n").encode())
    run_reactor_until(reactor, lambda: expect_id in observer.connected)
    return s


def test_paused_node_reads_nothing_then_everything_in_order():
    reactor, node, observer = start()
    s = chat_peer(node, reactor, observer, 1)
    node.pause_reading()
    s.sendall(b"one\ntwo\n")
    for _ in range(20):
        reactor.call_later(0.005, lambda: None)
        reactor.run_once()
    assert observer.messages == []
    # A connection that arrives while paused finishes its handshake, then waits too.
    raw = socket.create_connection(("127.0.0.1", node.port), timeout=5)
    raw.sendall(b"first\nsecond\n")
    run_reactor_until(reactor, lambda: 2 in observer.connected)
    raw.sendall(b"third\n")
    for _ in range(20):
        reactor.call_later(0.005, lambda: None)
        reactor.run_once()
    assert "third" not in observer.messages and "one" not in observer.messages
    node.resume_reading()
    run_reactor_until(reactor, lambda: "third" in observer.messages and "two" in observer.messages)
    assert [m for m in observer.messages if m in ("one", "two")] == ["one", "two"]
    s.close()
    raw.close()
    reactor.close()


def test_while_paused_heartbeats_go_out_and_silence_is_not_held_against_peers():
    clock = Clock()
    reactor, node, observer = start(clock)
    s = chat_peer(node, reactor, observer, 1)
    buf = bytearray()
    assert recv_line(s, buf=buf).startswith(b"\x01HELLO")
    node.pause_reading()
    for _ in range(10):                      # 10 heartbeat periods of not reading it
        clock.now += 1.0
        turn(reactor)
        turn(reactor)
    assert observer.lost == []
    assert recv_line(s, buf=buf) == b"\x01PING"      # our heartbeats kept going out
    node.resume_reading()
    clock.now += 1.5                         # less than 3 periods since the resume
    turn(reactor)
    turn(reactor)
    assert observer.lost == []
    clock.now += 3.0                         # and now it really is silent
    turn(reactor)
    assert observer.lost == [(1, CloseReason.TIMED_OUT)]
    s.close()
    reactor.close()

"""The virtual clock of the in-process tests: it jumps only when the loop is idle by
construction (see ``virtualtime.AutojumpSelector``)."""

from __future__ import annotations

import socket

import pytest

from helpers import tcp_pair
from reactor.loop import EVENT_READ, EVENT_WRITE
from virtualtime import loopback_backlog, tcp_in_flight, virtual_time_reactor

pytestmark = pytest.mark.skipif(loopback_backlog() is None,
                                reason="the kernel does not count its loopback backlog")


class Handler:
    closed = False

    def __init__(self, sock):
        self.sock = sock
        self.events = []

    def on_readable(self):
        self.events.append(("read", self.sock.recv(65536)))

    def on_writable(self):
        self.events.append("write")


def test_an_idle_loop_jumps_to_its_next_timer_at_once():
    reactor = virtual_time_reactor()
    fired = []
    start = reactor.time()
    reactor.call_later(30, lambda: fired.append(reactor.time() - start))
    reactor.run_once()
    assert fired == [30] and reactor.selector.jumps == 1
    reactor.close()


def test_a_ready_fd_is_served_and_time_stands_still():
    reactor = virtual_time_reactor()
    ours, theirs = tcp_pair()
    handler = Handler(ours)
    reactor.set_handler(ours.fileno(), handler, EVENT_READ)
    reactor.call_later(30, lambda: None)
    start = reactor.time()
    theirs.sendall(b"now")                 # on loopback: readable before sendall returns
    reactor.run_once()
    assert handler.events == [("read", b"now")]
    assert reactor.time() == start and reactor.selector.jumps == 0
    reactor.close()
    ours.close()
    theirs.close()


def test_no_jump_while_a_segment_is_unacknowledged():
    """A full send buffer towards a peer that reads nothing: the peer's kernel delays its
    last ACK (tens of milliseconds), and until it comes our socket may still become
    writable. The jump waits for it; a fixed quiet period of 5 ms did not."""
    reactor = virtual_time_reactor()
    ours, theirs = tcp_pair()
    ours.setblocking(False)
    ours.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    handler = Handler(ours)
    chunk = b"m" * 90 + b"\n"
    for _ in range(100):                   # until a fill ends with a segment in flight
        try:
            while True:
                ours.send(chunk * 40)
        except BlockingIOError:
            pass
        if tcp_in_flight(ours.fileno(), 0):
            break
    else:
        pytest.skip("every segment was acknowledged at once: nothing to wait for")
    reactor.set_handler(ours.fileno(), handler, EVENT_READ | EVENT_WRITE)
    seen_at_jump = []
    reactor.call_later(30, lambda: seen_at_jump.append(tcp_in_flight(ours.fileno(), 0)))
    while not seen_at_jump:
        reactor.run_once()
    assert seen_at_jump == [False]         # the kernel had settled when time moved
    assert reactor.selector.settle_waits >= 1 and reactor.selector.unsettled_jumps == 0
    reactor.close()
    ours.close()
    theirs.close()

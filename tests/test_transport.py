"""StreamTransport, Connector and Listener on real sockets."""

from __future__ import annotations

import errno
import socket
import struct

import pytest

from helpers import BlackHole, free_port, tcp_pair
from reactor.listener import ACCEPT_BATCH, Listener
from reactor.loop import EVENT_READ, EVENT_WRITE, Reactor
from reactor.protocol import Protocol
from reactor.transport import Connector, StreamTransport
from virtualtime import run_reactor_until, virtual_time_reactor


class Recording(Protocol):
    def __init__(self):
        self.data = bytearray()
        self.events = []

    def data_received(self, data):
        self.data += data

    def eof_received(self):
        self.events.append("eof")

    def connection_lost(self, exc):
        self.events.append(("lost", type(exc).__name__ if exc else None))

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")




def test_write_eof_is_a_half_close_after_what_is_queued_and_reading_goes_on():
    reactor = Reactor()
    ours, theirs = tcp_pair()
    proto = Recording()
    t = StreamTransport(reactor, ours, proto)
    assert t.can_write_eof is True
    t.write(b"last words\n")
    t.write_eof()
    t.write(b"ignored after write_eof\n")
    theirs.settimeout(5)
    got = bytearray()
    reactor.run_once()                              # the end of the turn sends, then SHUT_WR
    while True:
        chunk = theirs.recv(4096)
        if not chunk:
            break                                   # our FIN, after the bytes
        got += chunk
    assert bytes(got) == b"last words\n" and not t.closed
    theirs.sendall(b"still heard\n")               # our side still reads
    run_reactor_until(reactor, lambda: proto.data)
    assert bytes(proto.data) == b"still heard\n"
    theirs.close()
    run_reactor_until(reactor, lambda: ("lost", None) in proto.events)
    assert proto.events == ["eof", ("lost", None)]
    reactor.close()


def test_partial_writes_are_buffered_with_write_interest_until_drained():
    reactor = Reactor()
    ours, theirs = tcp_pair()
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    proto = Recording()
    t = StreamTransport(reactor, ours, proto)
    fd = ours.fileno()
    payload = bytes(range(256)) * 40000            # 10 MB: more than the kernel takes
    t.write(payload)
    assert t.get_write_buffer_size() == len(payload)    # sent at the end of the turn
    assert proto.events == ["pause"]
    reactor.run_once()
    assert 0 < t.get_write_buffer_size() < len(payload)  # the kernel took only part
    assert reactor.selector.get_key(fd).events == EVENT_READ | EVENT_WRITE
    received = bytearray()
    theirs.setblocking(False)

    def drain():
        try:
            while True:
                chunk = theirs.recv(1 << 20)
                if not chunk:
                    break
                received.extend(chunk)
        except BlockingIOError:
            pass
        return len(received) == len(payload)

    run_reactor_until(reactor, drain)
    assert bytes(received) == payload
    assert t.get_write_buffer_size() == 0
    assert reactor.selector.get_key(fd).events == EVENT_READ
    assert proto.events == ["pause", "resume"]
    t.close()
    t.close()                                       # idempotent
    assert proto.events[-1] != ("lost", None)       # deferred, not called inline
    reactor.run_once()
    assert proto.events.count(("lost", None)) == 1
    theirs.close()
    reactor.close()


def test_writes_of_one_turn_leave_in_one_send():
    reactor = Reactor()
    ours, theirs = tcp_pair()
    t = StreamTransport(reactor, ours, Recording())
    sends = []
    real_send = ours.send

    class Spy:
        def __getattr__(self, name):
            return getattr(ours, name)

        def send(self, data):
            sends.append(bytes(data))
            return real_send(data)

    t._sock = Spy()
    for i in range(100):
        t.write(b"message %d\n" % i)
    reactor.run_once()
    assert sends == [b"".join(b"message %d\n" % i for i in range(100))]
    t.close()
    reactor.run_once()
    theirs.close()
    reactor.close()


def test_close_after_flush_delivers_everything_then_eof():
    reactor = Reactor()
    ours, theirs = tcp_pair()
    proto = Recording()
    t = StreamTransport(reactor, ours, proto)
    t.write(b"x" * 5_000_000)
    t.close()
    t.write(b"ignored after close")
    got = bytearray()
    theirs.setblocking(False)

    def read_all():
        try:
            chunk = theirs.recv(1 << 20)
        except BlockingIOError:
            return False
        if chunk == b"":
            return True
        got.extend(chunk)
        return False

    run_reactor_until(reactor, read_all)
    assert bytes(got) == b"x" * 5_000_000
    run_reactor_until(reactor, lambda: ("lost", None) in proto.events)
    theirs.close()
    reactor.close()


def test_eof_is_delivered_before_the_connection_is_lost_cleanly():
    reactor = Reactor()
    ours, theirs = tcp_pair()
    proto = Recording()
    StreamTransport(reactor, ours, proto)
    theirs.sendall(b"hello")
    theirs.shutdown(socket.SHUT_WR)
    run_reactor_until(reactor, lambda: ("lost", None) in proto.events)
    assert proto.data == b"hello" and proto.events == ["eof", ("lost", None)]
    theirs.close()
    reactor.close()


def test_a_reset_is_reported_as_a_reset():
    reactor = Reactor()
    ours, theirs = tcp_pair()
    proto = Recording()
    t = StreamTransport(reactor, ours, proto)
    theirs.sendall(b"unread")
    t.write(b"data the peer never reads\n")
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    theirs.close()                                   # RST
    run_reactor_until(reactor, lambda: any(isinstance(e, tuple) for e in proto.events))
    assert [e for e in proto.events if isinstance(e, tuple)] == [("lost", "ConnectionResetError")]
    reactor.close()


def test_abort_drops_the_buffer_counts_it_and_closes_at_once():
    reactor = Reactor()
    ours, theirs = tcp_pair()
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    proto = Recording()
    t = StreamTransport(reactor, ours, proto)
    fd = ours.fileno()
    t.write(b"x" * 10_000_000)                       # far more than the kernel takes
    reactor.run_once()
    left = t.get_write_buffer_size()
    assert left > 0
    t.abort()
    assert t.closed and t.get_write_buffer_size() == 0 and t.dropped_bytes == left
    assert reactor.selector.get_map().get(fd) is None and ours.fileno() == -1
    t.abort()                                        # idempotent
    reactor.run_once()
    assert proto.events.count(("lost", None)) == 1
    theirs.close()
    reactor.close()


def test_write_eof_sends_what_is_buffered_then_half_closes_and_keeps_reading():
    reactor = Reactor()
    ours, theirs = tcp_pair()
    proto = Recording()
    t = StreamTransport(reactor, ours, proto)
    t.write(b"last words\n")
    t.write_eof()
    t.write(b"ignored after eof\n")
    theirs.settimeout(5)
    got = bytearray()
    run_reactor_until(reactor, lambda: t.get_write_buffer_size() == 0)
    while chunk := theirs.recv(100):                 # EOF after the buffer: a half-close
        got += chunk
    assert got == b"last words\n" and not t.closed
    theirs.sendall(b"and an answer")                 # we still read
    theirs.close()
    run_reactor_until(reactor, lambda: ("lost", None) in proto.events)
    assert proto.data == b"and an answer"
    reactor.close()


def test_connector_success_refused_timeout_and_cancel():
    reactor = virtual_time_reactor()
    results = []
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        Connector(reactor, srv.getsockname(), 5, lambda s: results.append(("ok", s)),
                  lambda e: results.append(("fail", e)))
        run_reactor_until(reactor, lambda: results)
        assert results[0][0] == "ok"
        results[0][1].close()
    results.clear()
    Connector(reactor, ("127.0.0.1", free_port()), 5, lambda s: results.append(("ok", s)),
              lambda e: results.append(("fail", e)))
    assert results == []                      # never from inside __init__
    run_reactor_until(reactor, lambda: results)
    assert results[0][0] == "fail" and results[0][1].errno == errno.ECONNREFUSED
    hole = BlackHole()
    try:
        results.clear()
        started = reactor.time()
        Connector(reactor, ("127.0.0.1", hole.port), 5, lambda s: results.append(("ok", s)),
                  lambda e: results.append(("fail", e)))
        run_reactor_until(reactor, lambda: results)
        assert results[0][0] == "fail" and isinstance(results[0][1], TimeoutError)
        assert reactor.time() - started == pytest.approx(5)
        results.clear()
        c = Connector(reactor, ("127.0.0.1", hole.port), 0.3,
                      lambda s: results.append(("ok", s)), lambda e: results.append(("fail", e)))
        c.cancel()
        assert c.closed and not reactor.selector.get_map()
    finally:
        hole.close()
    reactor.close()


def test_listener_accepts_a_batch_per_event():
    reactor = Reactor()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(256)
    srv.setblocking(False)
    accepted = []
    Listener(reactor, srv, lambda s, a: accepted.append(s), lambda e, r: None)
    clients = [socket.create_connection(srv.getsockname()) for _ in range(ACCEPT_BATCH + 10)]
    reactor.run_once()
    assert len(accepted) == ACCEPT_BATCH
    run_reactor_until(reactor, lambda: len(accepted) == len(clients))
    for s in accepted + clients:
        s.close()
    srv.close()
    reactor.close()


def test_listener_backs_off_on_emfile():
    class Clock:
        now = 0.0

        def __call__(self):
            return self.now

    clock = Clock()
    reactor = Reactor(clock=clock)

    class Starved:
        def __init__(self, real):
            self.real = real

        def fileno(self):
            return self.real.fileno()

        def accept(self):
            raise OSError(errno.EMFILE, "Too many open files")

        def getsockname(self):
            return self.real.getsockname()

        def close(self):
            self.real.close()

    real = socket.socket()
    real.bind(("127.0.0.1", 0))
    real.listen(5)
    starved = []
    Listener(reactor, Starved(real), lambda s, a: None,
             lambda e, r: starved.append((e.errno, r)))
    client = socket.create_connection(real.getsockname())
    run_reactor_until(reactor, lambda: starved)
    assert starved == [(errno.EMFILE, 1.0)]
    assert reactor.selector.get_map().get(real.fileno()) is None   # not watched: no spin
    clock.now += 1.0
    reactor.run_once()
    assert reactor.selector.get_map().get(real.fileno()) is not None
    client.close()
    real.close()
    reactor.close()


def test_a_write_kept_uncopied_until_the_end_of_the_turn_survives_close_and_more_writes():
    reactor = Reactor()
    ours, theirs = tcp_pair()
    t = StreamTransport(reactor, ours, Recording())
    t.write(b"one\n")                  # kept as given, sent at the end of the turn
    t.write(bytearray(b"two\n"))      # a second write: both go to the buffer, in order
    t.write_eof()
    assert t.get_write_buffer_size() == 8
    run_reactor_until(reactor, lambda: t.get_write_buffer_size() == 0)
    theirs.settimeout(5)
    assert theirs.recv(100) == b"one\ntwo\n" and theirs.recv(100) == b""
    ours2, theirs2 = tcp_pair()
    t2 = StreamTransport(reactor, ours2, Recording())
    t2.write(b"closing\n")
    t2.close()                         # before the end of the turn: still sent
    run_reactor_until(reactor, lambda: t2.closed)
    theirs2.settimeout(5)
    assert theirs2.recv(100) == b"closing\n"
    ours3, theirs3 = tcp_pair()
    t3 = StreamTransport(reactor, ours3, Recording())
    t3.write(b"dropped\n")
    t3.abort()
    assert t3.dropped_bytes == 8
    reactor.run_once()
    for s in (theirs, theirs2, theirs3):
        s.close()
    reactor.close()

"""TLSLayer on a real Reactor: handshakes, data, flow control, failures, start_tls."""

from __future__ import annotations

import hashlib
import socket
import ssl

import pytest

from reactor.loop import Reactor
from reactor.protocol import Protocol
from reactor.tls import TLSHandshakeTimeout, TLSLayer, TLSState, start_tls
from reactor.transport import StreamTransport
from tlskit import Cert, Upper, context, tcp_pair
from virtualtime import run_reactor_until, virtual_time_reactor


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tls-certs")
    return {name: Cert(root / name) for name in ("alice", "bob", "mallory")}


@pytest.fixture
def reactor():
    r = Reactor()
    yield r
    r.close()


def tls_pair(reactor, certs, client="alice", server="bob", client_trusts="bob",
             server_trusts="alice", sockets=None, **kwargs):
    """A client and a server TLSLayer over one loopback TCP connection."""
    c_sock, s_sock = sockets or tcp_pair()
    c_up, s_up = Upper(), Upper()
    c_tls = TLSLayer(reactor, context(False, certs[client], certs[client_trusts]), c_up,
                     server_side=False, **kwargs)
    s_tls = TLSLayer(reactor, context(True, certs[server], certs[server_trusts]), s_up,
                     server_side=True, **kwargs)
    StreamTransport(reactor, s_sock, s_tls)
    StreamTransport(reactor, c_sock, c_tls)
    return c_up, s_up, c_tls, s_tls


@pytest.mark.parametrize("make_sockets", [tcp_pair, socket.socketpair], ids=["tcp", "unix"])
def test_mutual_handshake_then_data_both_ways_and_an_orderly_close(reactor, certs,
                                                                    make_sockets):
    c_up, s_up, c_tls, s_tls = tls_pair(reactor, certs, sockets=make_sockets())
    run_reactor_until(reactor, lambda: c_up.made and s_up.made)
    assert c_up.transport is c_tls and s_up.transport is s_tls
    assert c_tls.peer_certificate == certs["bob"].der
    assert s_tls.peer_certificate == certs["alice"].der
    assert c_tls.version() == "TLSv1.3" and c_tls.state is TLSState.OPEN
    c_tls.write(b"hello bob\n")
    s_tls.write(b"hello alice\n")
    run_reactor_until(reactor, lambda: c_up.data and s_up.data)
    assert bytes(s_up.data) == b"hello bob\n" and bytes(c_up.data) == b"hello alice\n"
    c_tls.write(b"bye\n")
    c_tls.close()
    c_tls.write(b"ignored after close\n")
    c_tls.close()                                           # idempotent
    run_reactor_until(reactor, lambda: c_up.lost and s_up.lost)
    assert bytes(s_up.data) == b"hello bob\nbye\n"
    assert s_up.events == ["made", "eof", "lost"] and s_up.exc is None
    assert c_up.events == ["made", "lost"] and c_up.exc is None
    assert not reactor.selector.get_map()                   # both sockets unregistered


def test_write_eof_over_tls_is_close_notify_after_what_is_written(reactor, certs):
    c_up, s_up, c_tls, s_tls = tls_pair(reactor, certs)
    run_reactor_until(reactor, lambda: c_up.made and s_up.made)
    assert c_tls.can_write_eof is False           # no half-close: the caller is told
    c_tls.write(b"last words\n")
    c_tls.write_eof()                             # what close() does: it does not raise
    c_tls.write(b"ignored after write_eof\n")
    assert c_tls.state is TLSState.CLOSING
    run_reactor_until(reactor, lambda: c_up.lost and s_up.lost)
    assert bytes(s_up.data) == b"last words\n"
    assert s_up.events == ["made", "eof", "lost"] and s_up.exc is None
    assert c_up.events == ["made", "lost"] and c_up.exc is None


def test_the_layer_uses_only_the_transport_interface_below(reactor, certs):
    """Over an in-memory lower transport that has the ``Transport`` members and nothing
    else: the water marks are set on it, its pause state and dropped bytes are read."""
    c_up, s_up, c_tls, s_tls, c_wire, s_wire = handshaken_pair(reactor, certs)
    assert c_up.made and s_up.made
    assert c_wire.high_water == c_wire.low_water == c_tls.low_water
    c_wire.dropped_bytes = 7
    c_tls.write(b"x" * 10)
    c_tls.abort()
    assert c_tls.dropped_bytes == 10 + 7 and c_wire.closing


class Wire:
    """A lower transport (``reactor.protocol.Transport``) in memory, to feed ciphertext
    split anywhere."""

    peername = ("127.0.0.1", 1)
    last_write_progress = 0.0
    can_write_eof = True
    closed = False
    write_paused = False
    dropped_bytes = 0

    def __init__(self):
        self.out = bytearray()
        self.closing = False
        self.high_water = self.low_water = None

    def write(self, data):
        self.out += data

    def write_eof(self):
        self.closing = True

    def get_write_buffer_size(self):
        return 0

    def close(self):
        self.closing = True

    def abort(self, exc=None):
        self.closing = True

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def set_protocol(self, protocol):
        pass


def feed(wire, layer, size):
    data, wire.out = bytes(wire.out), bytearray()
    for i in range(0, len(data), size):
        layer.data_received(data[i:i + size])


def handshaken_pair(reactor, certs, size=1 << 20):
    """alice (client) and bob (server) on in-memory wires, the handshake done by feeding
    each side's ciphertext to the other in pieces of ``size`` bytes.
    Returns (c_up, s_up, c_tls, s_tls, c_wire, s_wire)."""
    c_up, s_up = Upper(), Upper()
    c_tls = TLSLayer(reactor, context(False, certs["alice"], certs["bob"]), c_up,
                     server_side=False)
    s_tls = TLSLayer(reactor, context(True, certs["bob"], certs["alice"]), s_up,
                     server_side=True)
    c_wire, s_wire = Wire(), Wire()
    c_tls.connection_made(c_wire)
    s_tls.connection_made(s_wire)
    for _ in range(4):
        feed(c_wire, s_tls, size)
        feed(s_wire, c_tls, size)
    return c_up, s_up, c_tls, s_tls, c_wire, s_wire


@pytest.mark.parametrize("size", [*range(1, 34), 64, 100, 517, 1000, 4096, 1 << 20])
def test_ciphertext_split_at_every_size_gives_the_same_plaintext(reactor, certs, size):
    c_up, s_up, c_tls, s_tls, c_wire, s_wire = handshaken_pair(reactor, certs, size)
    assert c_up.made and s_up.made
    lines = [b"line %d \xc3\xa9\n" % i * (i % 7 + 1) for i in range(50)]
    for line in lines:
        c_tls.write(line)
        reactor.run_once()                   # one record per line
    c_tls.write(b"last, with the close\n")
    c_tls.close()
    feed(c_wire, s_tls, size)
    assert bytes(s_up.data) == b"".join(lines) + b"last, with the close\n"
    assert s_up.events == ["made", "eof"]
    if size == 1:
        assert len(s_up.chunks) == len(lines) + 1    # one call per record completed
    if size == 1 << 20:
        assert len(s_up.chunks) == 1                 # everything drained in one go
    assert s_wire.closing and c_wire.closing         # close_notify answered, both closed
    for layer in (c_tls, s_tls):
        layer.connection_lost(None)
    assert s_up.exc is None and c_up.exc is None


class Producer(Upper):
    """Writes ``total`` bytes as fast as flow control lets it."""

    def __init__(self, total, chunk=65536):
        super().__init__()
        self.left = total
        self.chunk = chunk
        self.paused = False
        self.sent = hashlib.sha256()
        self.max_buffered = 0

    def connection_made(self, transport):
        super().connection_made(transport)
        self.produce()

    def produce(self):
        while self.left and not self.paused:
            block = bytes([self.left % 251]) * min(self.chunk, self.left)
            self.left -= len(block)
            self.sent.update(block)
            self.transport.write(block)
            self.max_buffered = max(self.max_buffered, self.transport.get_write_buffer_size())
        if not self.left:
            self.transport.close()

    def pause_writing(self):
        super().pause_writing()
        self.paused = True

    def resume_writing(self):
        super().resume_writing()
        self.paused = False
        self.produce()


class Sink(Upper):
    def __init__(self):
        super().__init__()
        self.got = hashlib.sha256()
        self.count = 0

    def data_received(self, data):
        self.got.update(data)
        self.count += len(data)


# The transport's own marks must not matter: the layer sets them so that it
# hears of every drain below its low-water mark (a transport that never
# paused would otherwise never say it drained, and the writer would wait forever).
@pytest.mark.parametrize("lower_marks", [{}, {"high_water": 1 << 30, "low_water": 1 << 29}])
def test_megabytes_arrive_intact_in_order_with_flow_control(reactor, certs, lower_marks):
    total = 8 * 1024 * 1024
    c_sock, s_sock = tcp_pair()
    s_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    producer, sink = Producer(total), Sink()
    c_tls = TLSLayer(reactor, context(False, certs["alice"], certs["bob"]), producer,
                     server_side=False)
    s_tls = TLSLayer(reactor, context(True, certs["bob"], certs["alice"]), sink,
                     server_side=True)
    StreamTransport(reactor, s_sock, s_tls)
    StreamTransport(reactor, c_sock, c_tls, **lower_marks)
    run_reactor_until(reactor, lambda: sink.lost and producer.lost, timeout=20)
    assert sink.count == total and sink.got.digest() == producer.sent.digest()
    assert sink.exc is None and producer.exc is None
    assert producer.events.count("pause") >= 2
    assert producer.events.count("pause") == producer.events.count("resume")
    # Paused above 64 KiB: at most one more chunk is written before it stops.
    assert producer.max_buffered <= c_tls.high_water + producer.chunk


class Hello(Protocol):
    """A plaintext line first, then TLS on the same connection."""

    def __init__(self, reactor, ctx, server_side, first_line):
        self.reactor, self.ctx, self.server_side = reactor, ctx, server_side
        self.first_line = first_line
        self.buf = bytearray()
        self.upper = Upper()
        self.tls = None
        self.trailing = None

    def connection_made(self, transport):
        self.transport = transport
        if not self.server_side:
            transport.write(self.first_line)
            # The ClientHello leaves in the same send as the plaintext line.
            self.tls = start_tls(self.reactor, transport, self.upper, self.ctx,
                                 server_side=False)

    def data_received(self, data):
        self.buf += data
        end = self.buf.find(b"\n")
        if end >= 0:
            self.line = bytes(self.buf[:end + 1])
            self.trailing = bytes(self.buf[end + 1:])
            self.tls = start_tls(self.reactor, self.transport, self.upper, self.ctx,
                                 server_side=True, initial_data=self.trailing)

    def connection_lost(self, exc):
        self.upper.events.append("lost below hello")


def test_start_tls_after_a_plaintext_line_with_ciphertext_in_the_same_chunk(reactor, certs):
    c_sock, s_sock = tcp_pair()
    server = Hello(reactor, context(True, certs["bob"], certs["alice"]), True, None)
    client = Hello(reactor, context(False, certs["alice"], certs["bob"]), False,
                   b"HELLO alice\n")
    StreamTransport(reactor, s_sock, server)
    StreamTransport(reactor, c_sock, client)
    run_reactor_until(reactor, lambda: client.upper.made and server.upper.made)
    assert server.line == b"HELLO alice\n"
    assert server.trailing[:1] == b"\x16"            # a TLS handshake record came with it
    assert server.tls.peer_certificate == certs["alice"].der
    client.tls.write(b"secret\n")
    run_reactor_until(reactor, lambda: server.upper.data)
    assert bytes(server.upper.data) == b"secret\n"
    server.tls.close()
    run_reactor_until(reactor, lambda: client.upper.lost and server.upper.lost)
    assert client.upper.exc is None and server.upper.exc is None
    assert "lost below hello" not in client.upper.events + server.upper.events


def test_a_stalled_handshake_times_out(certs):
    reactor = virtual_time_reactor()          # the loop is idle: the clock jumps to the timeout
    ours, silent = tcp_pair()
    up = Upper()
    tls = TLSLayer(reactor, context(True, certs["bob"], certs["alice"]), up, server_side=True,
                   handshake_timeout=0.2)
    started = reactor.time()
    StreamTransport(reactor, ours, tls)
    run_reactor_until(reactor, lambda: up.lost)
    assert isinstance(up.exc, TLSHandshakeTimeout)
    assert reactor.time() - started == pytest.approx(0.2)     # at the timeout, not before
    assert up.events == ["lost"]
    silent.close()
    reactor.close()


class Tamper:
    """Wraps a transport; flips one byte of the next write when armed."""

    def __init__(self, inner):
        self.inner = inner
        self.armed_at = None

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def write(self, data):
        if self.armed_at is not None:
            data = bytearray(data)
            data[self.armed_at] ^= 0x01
            self.armed_at = None
        self.inner.write(bytes(data))


def test_a_flipped_byte_drops_the_connection_and_delivers_nothing_of_that_record(
        reactor, certs):
    c_up, s_up = Upper(), Upper()
    c_sock, s_sock = tcp_pair()
    s_tls = TLSLayer(reactor, context(True, certs["bob"], certs["alice"]), s_up,
                     server_side=True)
    StreamTransport(reactor, s_sock, s_tls)
    c_tls = TLSLayer(reactor, context(False, certs["alice"], certs["bob"]), c_up,
                     server_side=False)
    lower = StreamTransport(reactor, c_sock, Protocol())
    tamper = Tamper(lower)
    lower.set_protocol(c_tls)
    c_tls.connection_made(tamper)
    run_reactor_until(reactor, lambda: c_up.made and s_up.made)
    c_tls.write(b"good line\n")
    run_reactor_until(reactor, lambda: s_up.data)
    tamper.armed_at = 5 + 3             # inside the encrypted payload of the next record
    c_tls.write(b"tampered line\n")
    run_reactor_until(reactor, lambda: s_up.lost)
    assert bytes(s_up.data) == b"good line\n"
    assert isinstance(s_up.exc, ssl.SSLError) and s_up.events == ["made", "lost"]
    run_reactor_until(reactor, lambda: c_up.lost)      # the alert (or the close) reached it


def test_a_tampered_record_after_a_good_one_in_the_same_chunk(reactor, certs):
    c_up, s_up, c_tls, s_tls, c_wire, s_wire = handshaken_pair(reactor, certs)
    c_tls.write(b"first\n")
    reactor.run_once()
    good = bytes(c_wire.out)
    c_tls.write(b"second\n")
    reactor.run_once()
    bad = bytearray(c_wire.out[len(good):])
    bad[-1] ^= 0x80                                  # in the authentication tag
    s_tls.data_received(good + bytes(bad))
    assert bytes(s_up.data) == b"first\n"
    assert s_tls.state is TLSState.CLOSED and s_wire.closing
    s_tls.connection_lost(None)
    assert isinstance(s_up.exc, ssl.SSLError)
    assert "BAD_RECORD_MAC" in str(s_up.exc).upper() or "DECRYPT" in str(s_up.exc).upper()


def test_a_stream_cut_without_close_notify_is_reported_as_truncated(reactor, certs):
    c_up, s_up, c_tls, s_tls = tls_pair(reactor, certs)
    run_reactor_until(reactor, lambda: c_up.made and s_up.made)
    c_tls.write(b"partial")
    run_reactor_until(reactor, lambda: s_up.data)
    c_tls._transport.close()            # TCP FIN, no close_notify
    run_reactor_until(reactor, lambda: s_up.lost)
    assert bytes(s_up.data) == b"partial"
    assert isinstance(s_up.exc, ssl.SSLEOFError)
    assert "eof" not in s_up.events


def test_a_peer_with_another_certificate_fails_verification_both_ways(reactor, certs):
    # The server expects alice; mallory connects with her own certificate.
    c_up, s_up, _, _ = tls_pair(reactor, certs, client="mallory", client_trusts="bob",
                                server_trusts="alice")
    run_reactor_until(reactor, lambda: c_up.lost and s_up.lost)
    assert isinstance(s_up.exc, ssl.SSLCertVerificationError) and not s_up.made
    assert isinstance(c_up.exc, ssl.SSLError)    # TLS 1.3: the refusal comes after its handshake
    # The client expects bob; mallory answers.
    c_up, s_up, _, _ = tls_pair(reactor, certs, server="mallory", client_trusts="bob",
                                server_trusts="alice")
    run_reactor_until(reactor, lambda: c_up.lost and s_up.lost)
    assert isinstance(c_up.exc, ssl.SSLCertVerificationError) and not c_up.made
    assert isinstance(s_up.exc, ssl.SSLError) and not s_up.made


def test_records_held_while_reading_is_paused_are_delivered_on_resume(reactor, certs):
    c_up, s_up, c_tls, s_tls = tls_pair(reactor, certs)
    run_reactor_until(reactor, lambda: c_up.made and s_up.made)
    s_tls.pause_reading()
    c_tls.write(b"while paused\n")
    c_tls.write(b"and more\n")
    # Let the transport read it, as if it had arrived just before the pause.
    s_tls._transport.resume_reading()
    run_reactor_until(reactor, lambda: s_tls._incoming.pending)
    s_tls._transport.pause_reading()
    assert not s_up.data
    s_tls.resume_reading()                          # no new packet will come
    reactor.run_once()
    assert bytes(s_up.data) == b"while paused\nand more\n"


def test_close_before_the_handshake_finishes_flushes_after_it(reactor, certs):
    c_up, s_up, c_tls, s_tls = tls_pair(reactor, certs)
    c_tls.write(b"written early\n")
    c_tls.close()
    assert c_tls.is_closing
    run_reactor_until(reactor, lambda: s_up.lost and c_up.lost)
    assert bytes(s_up.data) == b"written early\n" and s_up.exc is None
    assert "made" not in c_up.events and c_up.exc is None


def test_abort_drops_everything_and_reports_once(reactor, certs):
    c_up, s_up, c_tls, s_tls = tls_pair(reactor, certs)
    run_reactor_until(reactor, lambda: c_up.made and s_up.made)
    c_tls.write(b"never sent")
    c_tls.abort()
    c_tls.abort()
    run_reactor_until(reactor, lambda: c_up.lost and s_up.lost)
    assert c_up.events.count("lost") == 1 and not s_up.data
    assert isinstance(s_up.exc, ssl.SSLEOFError)


def test_taking_over_a_paused_transport_owes_the_protocol_its_resume(reactor, certs):
    up = Upper()
    wire = Wire()
    wire.write_paused = True                  # paused under the plaintext protocol
    tls = TLSLayer(reactor, context(False, certs["alice"], certs["bob"]), up,
                   server_side=False)
    tls.connection_made(wire)
    assert tls.write_paused
    tls.resume_writing()                      # the transport drained: it tells us now
    assert up.events == ["resume"] and not tls.write_paused


def test_a_record_cut_in_the_middle_then_fin_delivers_nothing_of_it(reactor, certs):
    c_up, s_up, c_tls, s_tls, c_wire, s_wire = handshaken_pair(reactor, certs)
    c_tls.write(b"whole\n")
    reactor.run_once()
    c_tls.write(b"cut short\n")
    reactor.run_once()
    data = bytes(c_wire.out)
    s_tls.data_received(data[:-5])                  # the second record lacks its end
    assert bytes(s_up.data) == b"whole\n"
    s_tls.eof_received()
    s_tls.connection_lost(None)
    assert bytes(s_up.data) == b"whole\n"
    assert isinstance(s_up.exc, ssl.SSLEOFError) and "eof" not in s_up.events

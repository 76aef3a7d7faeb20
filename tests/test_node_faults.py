"""Peers that read nothing, reset, or are not chat.py at all: the node in-process, on
virtual time with real loopback sockets, every message accounted for exactly.

The timers here are the real defaults (a 30 s send timeout, a 2 s flush limit): the
clock jumps over them (see ``helpers.AutojumpSelector``).
"""

from __future__ import annotations

import errno
import select
import socket
import struct

from network.outcomes import CloseReason
from test_node import net  # noqa: F401 - the fixture


def raw_listener():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # accepted sockets inherit it
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    return srv


def stalled(net, node):
    """``node`` connected to a plain peer that reads nothing, and sending to it until the
    kernel's buffers are full and the rest waits in ours. Returns (peer socket, sent,
    confirmations): ``confirmations`` gets one True/False per message, as each is settled."""
    srv = raw_listener()
    done = []
    node.connect("127.0.0.1", srv.getsockname()[1], done.append)
    conn, _ = srv.accept()
    srv.close()
    net.until(lambda: done)
    assert done == [True]
    confirmed = []
    transport = node._by_id[1].transport
    sent = 0
    while not (transport.write_paused and len(confirmed) < sent):
        assert sent < 200_000, "the buffers never filled"
        for _ in range(1000):
            node.send(1, f"message {sent:06d} " + "x" * 80, confirmed.append)
            sent += 1
        for _ in range(3):
            net.reactor.call_soon(lambda: None)      # a turn that does not sleep
            net.reactor.run_once()
    return conn, sent, confirmed


def read_until_eof(sock):
    data = bytearray()
    sock.settimeout(10)
    while chunk := sock.recv(1 << 20):
        data += chunk
    return bytes(data)


def test_a_peer_that_reads_nothing_is_dropped_after_the_send_timeout_nothing_unaccounted(net):
    a = net()                                    # --send-timeout 30, the default
    conn, sent, confirmed = stalled(net, a)
    start = net.reactor.time()
    net.until(lambda: a.observer.named("peer_lost"))
    (lost,) = a.observer.named("peer_lost")
    outcome = lost[2]
    assert outcome.reason is CloseReason.STALLED
    assert 30.0 <= outcome.silent_s <= net.reactor.time() - start + 0.001 <= 31.0 + 0.001
    assert outcome.unsent > 0
    received = read_until_eof(conn).count(b"\n") - 1          # our hello first
    assert confirmed.count(True) == received + outcome.unsent
    assert confirmed.count(False) == sent - confirmed.count(True)   # each told on its own
    assert not a.peers()
    conn.close()


def test_a_reset_counts_exactly_the_messages_that_never_left(net):
    a = net()
    conn, sent, confirmed = stalled(net, a)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()                                 # a reset, with much unread
    net.until(lambda: a.observer.named("peer_lost"))
    (lost,) = a.observer.named("peer_lost")
    outcome = lost[2]
    assert (outcome.reason, outcome.errno) == (CloseReason.RESET, errno.ECONNRESET)
    assert outcome.unsent > 0
    net.until(lambda: len(confirmed) == sent)
    # What the kernel had taken is lost with the reset: only our own buffer is countable.
    assert confirmed.count(False) == sent - confirmed.count(True)
    assert not a.peers()


def test_connecting_to_a_plain_listener_offers_tls_then_talks_plain_lines(net):
    a = net()
    srv = raw_listener()
    done = []
    a.connect("127.0.0.1", srv.getsockname()[1], done.append)
    conn, _ = srv.accept()
    srv.close()
    buf = bytearray()
    net.until(lambda: _read_into(conn, buf) or b"\n" in buf)
    assert buf.startswith(b"\x01HELLO chat/2")      # a hello first, then silence: plain
    net.until(lambda: done)
    assert done == [True]
    (info,) = a.peers()
    assert not info.speaks_protocol
    (connected,) = a.observer.named("peer_connected")
    assert connected[1] == info
    a.send(1, "plain text", done.append)
    net.until(lambda: _read_into(conn, buf) or buf.endswith(b"plain text\n"))
    assert buf.count(b"\n") == 2                     # nothing between the hello and the text
    conn.sendall(b"reply\n")
    net.until(lambda: a.observer.texts() == ["reply"])
    conn.close()


def _read_into(sock, buf) -> bool:
    """Append what ``sock`` has now to ``buf`` (never blocks); False, for use in ``until``."""
    while select.select([sock], [], [], 0)[0]:
        data = sock.recv(65536)
        if not data:
            break
        buf += data
    return False

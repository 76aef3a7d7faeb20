"""Peers that read nothing, reset, or are not chat.py at all: the node in-process, on
virtual time with real loopback sockets, every message accounted for exactly.

The send timeout (30 s) and the flush limit of ``terminate`` (2 s) are the real
defaults here: the clock jumps over them (see ``virtualtime.AutojumpSelector``).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct

import pytest

from network.outcomes import CloseReason, Posted


def raw_listener():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # accepted sockets inherit it
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    return srv


class Results(list):
    """``(n, ok)`` for each message settled, and how many were ``sent``."""
    sent = 0


def stalled(net, node):
    """``node`` connected to a plain peer that reads nothing, and sending to it until the
    kernel's buffers are full and the rest waits in ours.

    Returns (peer socket, results): ``results`` gets ``(n, ok)`` as message n is settled.
    """
    srv = raw_listener()
    done = []
    node.connect("127.0.0.1", srv.getsockname()[1], done.append)
    conn, _ = srv.accept()
    srv.close()
    net.until(lambda: done)
    assert done == [True]
    results = Results()
    transport = node._registry.live(1).conn.transport
    sent = 0
    while not (transport.write_paused and len(results) < sent):
        assert sent < 200_000, "the buffers never filled"
        for _ in range(1000):
            node.send(1, f"message {sent:06d} " + "x" * 80,
                      lambda posted, n=sent: results.append((n, posted is Posted.WRITTEN)))
            sent += 1
        for _ in range(3):
            net.reactor.call_soon(lambda: None)      # a turn that does not sleep
            net.reactor.run_once()
    results.sent = sent
    return conn, results


def confirmed_in_order(results) -> int:
    """Every message was settled once, in the order sent: first those that reached our
    buffer (True), then those still waiting for room (False). Returns how many reached it."""
    confirmed = sum(1 for _, ok in results if ok)
    assert results == [(n, n < confirmed) for n in range(results.sent)]
    return confirmed


def received_messages(sock) -> int:
    data = bytearray()
    sock.settimeout(10)
    while chunk := sock.recv(1 << 20):
        data += chunk
    assert data.startswith(b"\x01HELLO ")                   # our hello, then the messages
    return data.count(b"\n") - 1


def lost_outcome(net, node):
    net.until(lambda: node.observer.named("peer_lost"))
    (lost,) = node.observer.named("peer_lost")
    return lost[2]


def test_a_peer_that_reads_nothing_is_dropped_after_the_send_timeout_nothing_unaccounted(net):
    a = net()                                    # --send-timeout 30, the default
    conn, results = stalled(net, a)
    start = net.reactor.time()
    outcome = lost_outcome(net, a)
    assert outcome.reason is CloseReason.STALLED
    assert 30.0 <= outcome.silent_s <= net.reactor.time() - start + 0.001 <= 31.0 + 0.001
    assert outcome.unsent > 0
    net.until(lambda: len(results) == results.sent)
    assert confirmed_in_order(results) == received_messages(conn) + outcome.unsent
    assert not a.peers()
    conn.close()


def test_terminate_gives_up_after_its_flush_time_and_counts_what_was_left(net):
    a = net()                                    # --flush-timeout 2, the default
    conn, results = stalled(net, a)
    fd = a._registry.live(1).conn.transport._fd
    start = net.reactor.time()
    a.terminate(1)
    outcome = lost_outcome(net, a)
    assert net.reactor.time() - start == pytest.approx(2.0)
    assert outcome.reason is CloseReason.TERMINATED and outcome.unsent > 0
    net.until(lambda: not a._registry.counts()[2])
    assert not _is_our_socket(fd, conn)          # closed, fd freed, though never read
    net.until(lambda: len(results) == results.sent)
    assert confirmed_in_order(results) == received_messages(conn) + outcome.unsent
    conn.close()


def test_a_reset_counts_exactly_the_messages_that_never_left(net):
    a = net()
    conn, results = stalled(net, a)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()                                 # a reset, with much unread
    outcome = lost_outcome(net, a)
    assert (outcome.reason, outcome.errno) == (CloseReason.RESET, errno.ECONNRESET)
    net.until(lambda: len(results) == results.sent)
    # What the kernel had taken is lost with the reset; what was still in our buffer
    # is counted, and it is among what had been confirmed.
    assert 0 < outcome.unsent <= confirmed_in_order(results)
    assert not a.peers()


def test_connecting_to_a_plain_listener_knocks_once_then_talks_plain_lines(net):
    a = net()
    srv = raw_listener()
    done = []
    a.connect("127.0.0.1", srv.getsockname()[1], done.append)
    conn, _ = srv.accept()
    srv.close()
    buf = bytearray()
    net.until(lambda: _read_into(conn, buf) or b"\n" in buf)
    first = bytes(buf).partition(b"\n")[0]         # a knock first, then silence: plain
    assert first == b"\x01HELLO chat/2 knock=1" and len(first) + 1 <= 40
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


def _is_our_socket(fd, peer):
    """Is ``fd`` still a socket connected to ``peer``? (The number may have been reused.)"""
    try:
        probe = socket.socket(fileno=os.dup(fd))
    except OSError:
        return False
    with probe:
        try:
            return probe.getpeername() == peer.getsockname()
        except OSError:
            return False


def test_a_bug_in_handling_one_connections_event_costs_that_connection_only(net):
    """A handler that raises (here: the observer, once) is contained: the events queued
    behind it are still handled in order, and no other peer is touched."""
    from network import wire
    a, b = net("1" * 16), net("f" * 16)
    errors = []
    a._reactor._report_error = errors.append
    done = []
    a.connect("127.0.0.1", b.port, done.append)
    net.until(lambda: done == [True] and b.peers())
    recorded = a.observer.__getattr__("messages_received")
    failures = []

    def fails_once(info, texts):
        if not failures:
            failures.append(texts)
            raise RuntimeError("observer bug")
        recorded(info, texts)
    a.observer.messages_received = fails_once
    # A hello followed in one segment by lines the protocol holds while the node decides:
    # accepting it releases them as three events at once, behind each other.
    stranger = socket.create_connection(("127.0.0.1", a.port))
    hello = wire.hello_line(wire.Hello(40000, "2" * 16, 15000))
    stranger.sendall(wire.frame_lines([hello, "one", wire.name_line("bob"), "two"]))
    net.until(lambda: failures)
    assert failures == [["one"]]
    assert [e for e in errors if "RuntimeError: observer bug" in e] and len(errors) == 1
    net.until(lambda: len(a.peers()) == 1)              # the stranger's connection went
    (to_a,) = b.peers()
    b.send(to_a.id, "hi from b", done.append)
    net.until(lambda: "hi from b" in a.observer.texts())
    assert len(errors) == 1 and not a._inbox
    assert [p.id for p in a.peers()] == [1] and not b.observer.named("peer_lost")
    stranger.close()

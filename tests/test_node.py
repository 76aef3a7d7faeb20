"""The node in-process: several nodes on one reactor, real loopback sockets, a recording observer.

Fast and exact: every event each node reports is recorded, so a race can be
asserted event by event (no "closed", no error) without waiting on subprocesses.
The ``net`` fixture (conftest) runs them on virtual time.
"""

from __future__ import annotations

import select
import socket

import pytest

from helpers import DelayProxy
from network.outcomes import AddressProblem, CloseReason, Declined, Direction, Failure, Refusal, Refused


def settled(*nodes):
    return lambda: all(n._dialer.attempt is None and not n._registry.counts()[1] for n in nodes)


def one_each(a, b):
    return a._registry.counts()[0] == 1 and b._registry.counts()[0] == 1


def test_connect_reserves_its_id_and_reports_both_sides(net):
    a, b = net(), net()
    results = []
    ip, peer_id = a.connect("127.0.0.1", b.port, results.append)
    assert (ip, peer_id) == ("127.0.0.1", 1)
    net.until(lambda: results and b.peers())
    assert results == [True]
    (info,) = a.peers()
    assert (info.id, info.port, info.direction, info.speaks_protocol) == \
        (1, b.port, Direction.OUTGOING, True)
    (back,) = b.peers()
    assert (back.port, back.direction) == (a.port, Direction.INCOMING)
    a.send(1, "over", results.append)
    net.until(lambda: b.observer.texts() == ["over"])
    # Nothing of this waited for a timer: no step is late until some tick comes.
    assert net.reactor.selector.jumps == 0


@pytest.mark.parametrize("lower", ["a", "b"])
@pytest.mark.parametrize("delay", [0.0, pytest.param(0.1, marks=pytest.mark.real_time)])
def test_simultaneous_connects_settle_on_one_connection_quietly(net, lower, delay):
    ids = ("1" * 16, "f" * 16) if lower == "a" else ("f" * 16, "1" * 16)
    a, b = net(ids[0]), net(ids[1])
    proxies = [DelayProxy(b.port, delay), DelayProxy(a.port, delay)] if delay else []
    try:
        to_b, to_a = (proxies[0].port, proxies[1].port) if delay else (b.port, a.port)
        done = []
        a.connect("127.0.0.1", to_b, done.append)
        b.connect("127.0.0.1", to_a, done.append)
        net.until(lambda: len(done) == 2 and settled(a, b)() and one_each(a, b), timeout=10)
        # Let any retired duplicate finish closing, then look at everything reported.
        net.until(lambda: not a._registry.counts()[2] and not b._registry.counts()[2], timeout=10)
        assert done == [True, True]
        for n in (a, b):
            assert [c[0] for c in n.observer.calls] == ["peer_connected"], n.observer.calls
            assert n.peers()[0].id == 1               # the id each connect reserved
        kept_a, kept_b = a.peers()[0], b.peers()[0]
        assert {kept_a.direction, kept_b.direction} == {Direction.OUTGOING, Direction.INCOMING}
        # The lower node id's connection survived, and it carries messages both ways.
        assert (kept_a.direction is Direction.OUTGOING) == (lower == "a")
        a.send(kept_a.id, "a to b", done.append)
        b.send(kept_b.id, "b to a", done.append)
        net.until(lambda: b.observer.texts() == ["a to b"] and a.observer.texts() == ["b to a"])
    finally:
        for p in proxies:
            p.close()


def test_a_message_sent_on_the_losing_connection_is_not_lost(net):
    a, b = net("1" * 16), net("f" * 16)     # a's outgoing wins
    done = []
    a.connect("127.0.0.1", b.port, done.append)
    net.until(lambda: done)
    # b connects too, although a already has it: b's connection is retired, quietly.
    b._registry.find_address = lambda host, port: None    # as if by another address
    b.connect("127.0.0.1", a.port, done.append)
    b.send(b.peers()[0].id, "over the first", done.append)
    net.until(lambda: len(done) >= 3 and not a._registry.counts()[2] and not b._registry.counts()[2])
    assert "over the first" in a.observer.texts()
    assert a._registry.counts()[0] == b._registry.counts()[0] == 1
    assert not a.observer.named("peer_lost") and not b.observer.named("peer_lost")


@pytest.mark.real_time
def test_a_stranger_knocking_during_our_connect_does_not_take_its_id(net):
    a, b = net(), net()
    proxy = DelayProxy(b.port, 0.3)
    try:
        done = []
        _, reserved = a.connect("127.0.0.1", proxy.port, done.append)
        stranger = socket.create_connection(("127.0.0.1", a.port))
        stranger.sendall(b"me first\n")
        net.until(lambda: a.observer.texts() == ["me first"])
        net.until(lambda: done)
        ids = {info.port: info.id for info in a.peers()}
        assert ids[proxy.port] == reserved == 1
        assert ids[stranger.getsockname()[1]] == 2
        stranger.close()
    finally:
        proxy.close()


def test_duplicates_and_self_are_refused_with_our_own_id(net):
    a, b, c = net(), net(), net()
    done = []
    a.connect("127.0.0.1", c.port, done.append)        # a's peer 1 is c
    net.until(lambda: done)
    b.connect("127.0.0.1", a.port, done.append)        # a's peer 2 is b; b's peer 1 is a
    net.until(lambda: len(done) == 2 and len(a.peers()) == 2)
    # b's port is only b's claim until its hello proves it: the connect goes out, then
    # settles on the connection we have, under our id for it.
    a.connect("127.0.0.1", b.port, done.append)
    net.until(lambda: len(done) == 3 and not a._registry.counts()[2] and not b._registry.counts()[2])
    assert a.observer.named("already_connected")[-1][1].id == 2
    assert len(a.peers()) == 2 and len(b.peers()) == 1
    with pytest.raises(Refused) as caught:
        a.connect("127.0.0.1", c.port, done.append)      # an address a dialled: a fact
    assert caught.value.reason is Declined.DUPLICATE and caught.value.peer_id == 1
    with pytest.raises(Refused) as caught:
        a.connect("localhost", a.port, done.append)
    assert caught.value.reason is Declined.SELF
    with pytest.raises(Refused) as caught:
        a.connect("::", 80, done.append)
    assert caught.value.reason is Declined.ADDRESS \
        and caught.value.address is AddressProblem.UNUSABLE
    with pytest.raises(Refused) as caught:
        a.connect("::ffff:127.0.0.1", a.port, done.append)   # IPv4-mapped: the same address
    assert caught.value.reason is Declined.SELF
    with pytest.raises(Refused) as caught:
        a.connect("::ffff:127.0.0.1", c.port, done.append)
    assert caught.value.reason is Declined.DUPLICATE and caught.value.peer_id == 1


def test_a_full_peer_says_so_and_the_connector_reports_the_reason(net):
    a = net(max_peers=1)
    b, c = net(), net()
    done = []
    b.connect("127.0.0.1", a.port, done.append)
    net.until(lambda: done)
    c.connect("127.0.0.1", a.port, done.append)
    net.until(lambda: len(done) == 2)
    assert done == [True, False]
    (call,) = c.observer.named("connect_failed")
    failed = call[3]
    assert (failed.failure, failed.refusal, failed.limit) == \
        (Failure.REFUSED_BY_PEER, Refusal.FULL, 1)
    assert a.observer.named("incoming_refused")[0][2:] == (Refusal.FULL, 1, 1)


def test_one_address_holds_only_its_share(net):
    a = net(max_per_address=3)
    socks = []
    for _ in range(6):
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.connect(("127.0.0.1", a.port))
        socks.append(s)
    net.until(lambda: len(a.peers()) == 3 and not a._registry.counts()[1])
    refused = select.select(socks, [], [], 1.0)[0]       # only the refused hear anything
    assert len(refused) == 3
    assert all(s.recv(100) == b"\x01REFUSE busy 3\n" for s in refused)
    b = net()
    done = []
    b.connect("127.0.0.1", a.port, done.append)        # from 127.0.0.1: room enough
    net.until(lambda: done)
    assert done == [True]
    for s in socks:
        s.close()


def test_a_plain_client_silent_for_long_makes_room_when_full(net, monkeypatch):
    import network.admission as admission
    # 5 s, not 5 minutes: the virtual clock still stops at every 1 s stall check.
    monkeypatch.setattr(admission, "PLAIN_IDLE_EVICT_S", 5.0)
    a = net(max_peers=1)
    idle = socket.create_connection(("127.0.0.1", a.port))
    net.until(lambda: len(a.peers()) == 1)
    start = net.reactor.time()
    early = socket.create_connection(("127.0.0.1", a.port))  # too early: refused
    net.until(lambda: select.select([early], [], [], 0)[0])
    assert early.recv(100) == b"\x01REFUSE full 1\n"
    early.close()
    net.until(lambda: net.reactor.time() - start > admission.PLAIN_IDLE_EVICT_S)
    newcomer = socket.create_connection(("127.0.0.1", a.port))
    newcomer.sendall(b"room for me?\n")
    net.until(lambda: "room for me?" in a.observer.texts())
    (lost,) = a.observer.named("peer_lost")
    assert lost[2].reason is CloseReason.EVICTED
    idle.close()
    newcomer.close()

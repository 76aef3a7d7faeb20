"""Names and send-to-all in the node, in-process on one reactor (real loopback sockets)."""

import socket

import pytest

from network.outcomes import Declined, NameProblem, Refusal, Refused


def test_names_travel_in_the_hello_and_renames_are_reported(net):
    a, b = net(name="alice"), net(name="bob")
    done = []
    a.connect("127.0.0.1", b.port, done.append)
    net.until(lambda: done and b.peers())
    assert a.peers()[0].name == "bob" and b.peers()[0].name == "alice"
    assert a.set_name("alicia") == 1                       # one chat.py peer told
    net.until(lambda: b.observer.named("peer_renamed"))
    (_, before, after), = b.observer.named("peer_renamed")
    assert (before.name, after.name, after.id) == ("alice", "alicia", before.id)
    assert b.peers()[0].name == "alicia" and b.peer(before.id).name == "alicia"
    a.set_name(None)
    net.until(lambda: len(b.observer.named("peer_renamed")) == 2)
    assert b.peers()[0].name is None and not b.observer.named("bad_name")


def test_set_name_refuses_what_is_not_a_name(net):
    a = net()
    for text, problem in (("a b", NameProblem.CHARACTER), ("x" * 33, NameProblem.TOO_LONG),
                          ("7", NameProblem.DIGITS), ("all", NameProblem.RESERVED)):
        with pytest.raises(Refused) as caught:
            a.set_name(text)
        assert caught.value.reason is Declined.BAD_NAME and caught.value.problem is problem
    assert a.name is None


def test_a_bad_name_from_the_network_is_no_name_and_one_notice(net):
    a = net(name="alice")
    s = socket.create_connection(("127.0.0.1", a.port))
    try:
        s.sendall(b"\x01HELLO chat/2 port=5555 node=00000000000000aa heartbeat=60000 "
                  b"name=\x1b[2Jx\n")
        net.until(lambda: a.peers())
        assert a.peers()[0].name is None and a.peers()[0].speaks_protocol
        assert [c[2] for c in a.observer.named("bad_name")] == ["\x1b[2Jx"]
        s.sendall(b"hi\n\x01NAME " + b"n" * 33 + b"\nthere\n")
        net.until(lambda: len(a.observer.texts()) == 2)
        assert [c[2] for c in a.observer.named("bad_name")] == ["\x1b[2Jx", "n" * 33]
        assert not a.observer.named("peer_renamed")          # it had none, it has none
    finally:
        s.close()


def _plain_client(a, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", a.port))
    s.sendall(b"hi\n")
    return s


def _drain(s, into):
    s.setblocking(False)
    try:
        while True:
            data = s.recv(1 << 20)
            if not data:
                return
            into += data
    except BlockingIOError:
        pass


def test_send_to_all_does_not_wait_for_a_peer_that_reads_nothing(net):
    a = net(max_per_address=0)
    slow, fast = _plain_client(a, 4096), _plain_client(a)
    net.until(lambda: len(a.peers()) == 2)
    confirmed, got_fast, got_slow = [], bytearray(), bytearray()
    n = 0
    # Until the slow peer's buffer is above its high-water mark and a message waits.
    while not any(conn.waiting for conn in (e.conn for e in a._registry.live_entries())):
        n += 1
        a.send_to_all(f"m{n:06d} " + "x" * 90, lambda *done: confirmed.append(done))
        a._reactor.run_once()
        assert n < 100_000
    for k in range(20):                                  # and some more behind it
        n += 1
        a.send_to_all(f"m{n:06d} " + "x" * 90, lambda *done: confirmed.append(done))
    # The fast peer gets every one of them while the slow one reads nothing.
    net.until(lambda: _drain(fast, got_fast) or got_fast.count(b"\n") == n)
    assert len(confirmed) < n                            # the slow one's are not all in
    net.until(lambda: _drain(slow, got_slow) or len(confirmed) == n)
    net.until(lambda: _drain(slow, got_slow) or got_slow.count(b"\n") == n)
    expected = b"".join(b"m%06d " % k + b"x" * 90 + b"\n" for k in range(1, n + 1))
    assert bytes(got_fast) == expected and bytes(got_slow) == expected
    assert confirmed == [(2, [])] * n
    slow.close(), fast.close()


def test_send_to_all_names_those_that_closed_first(net):
    a = net(max_per_address=0)
    slow, fast = _plain_client(a, 4096), _plain_client(a)
    net.until(lambda: len(a.peers()) == 2)
    confirmed, sent = [], 0
    while not any(conn.waiting for conn in (e.conn for e in a._registry.live_entries())):
        a.send_to_all("y" * 99, lambda *done: confirmed.append(done))
        sent += 1
        a._reactor.run_once()
    a.send_to_all("last", lambda *done: confirmed.append(done))
    net.until(lambda: not a._fanout._batch)                    # it has left (or waits) for both
    slow_id = next(e.info.id for e in a._registry.live_entries() if e.conn.waiting)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    slow.close()                                          # a reset: nothing more is read
    net.until(lambda: len(confirmed) == sent + 1)
    assert confirmed[-1][0] == 2 and [info.id for info in confirmed[-1][1]] == [slow_id]
    fast.close()


def test_send_to_all_coalesces_while_messages_keep_coming_and_a_lone_one_leaves_at_once(
        net, monkeypatch):
    from network.connection import Connection
    from network.fanout import FANOUT_BATCH_BYTES
    a = net(max_per_address=0)
    peer = _plain_client(a)
    net.until(lambda: a.peers())
    conn = a._registry.live_entries()[0].conn
    writes = []
    real_send_batch = Connection.send_batch

    def send_batch(self, data, ends, now):
        if self is conn:
            writes.append(len(data))
        return real_send_batch(self, data, ends, now)
    monkeypatch.setattr(Connection, "send_batch", send_batch)
    confirmed = []
    a.send_to_all("alone", lambda *done: confirmed.append(done))
    a._reactor.run_once()
    a._reactor.run_once()                 # the turn after adds nothing: out it goes
    assert writes == [len(b"alone\n")] and confirmed == []
    a._reactor.run_once()                 # its confirmation comes later, never inside
    assert writes == [len(b"alone\n")] and confirmed == [(1, [])]
    message = "z" * 99                    # 100 bytes on the wire
    per_batch = -(-FANOUT_BATCH_BYTES // 100)
    for _ in range(per_batch + 5):        # one a turn, as a script's commands come
        a.send_to_all(message, lambda *done: confirmed.append(done))
        a._reactor.run_once()
    assert writes[1:] == [per_batch * 100]
    a._reactor.run_once()
    a._reactor.run_once()
    assert writes[1:] == [per_batch * 100, 500] and len(confirmed) == per_batch + 6
    peer.close()

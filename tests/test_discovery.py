"""Local discovery: the announcement's codec, the UDP endpoint, the bounded table.

Every datagram of these tests goes to 127.0.0.1 or ::1, by explicit targets: no test
broadcasts or multicasts onto this machine's network, and none joins a multicast group
(``group=None``) outside a network namespace. The one test of the real targets
(broadcast addresses, the IPv6 group) runs in two throw-away namespaces joined by a
veth pair, and is skipped where they cannot be made.

The reactors here run on a hand-driven clock (``Clock``): the 1 s, 30 s and 90 s rules
are tested by moving it, never by waiting, and every turn is made not to sleep
(``turn``), so a timer 30 fake seconds away can never become a real 30 s ``select``.
"""

from __future__ import annotations

import gc
import json
import random
import select
import socket
import subprocess
import sys
import textwrap
import time
import tracemalloc

import pytest

from helpers import ROOT
from network import discovery
from network.discovery import (ANNOUNCE_EVERY_S, ANNOUNCE_JITTER_S, FORGET_AFTER_S, MAX_HEARD,
                               MAX_HEARD_CALLS_PER_S, Announcement, Discovery, announcement,
                               maybe_parse)
from reactor import datagram
from reactor.datagram import MAX_DATAGRAM_BYTES, RECV_BATCH, DatagramEndpoint, sender_address
from reactor.loop import Reactor

pytestmark = pytest.mark.timeout(20)

FP = bytes(range(32))
NODE = "0123456789abcdef"
LOOP4 = "127.0.0.1"
MEMORY_BOUND = 256 * 1024          # bytes a flood may leave allocated, or peak at
FLOOD = 10_000
CHUNK = 32                          # datagrams sent before the reactor reads them
CHUNK_FAKE_S = 0.05                 # fake time that passes per chunk


# -- driving a reactor on a hand-driven clock --------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _noop() -> None:
    pass


def turn(reactor: Reactor) -> None:
    """One turn that never sleeps (a ready callback makes ``select`` poll)."""
    reactor.call_soon(_noop)
    reactor.run_once()


def turn_until(reactor: Reactor, condition, timeout: float = 5.0) -> int:
    """Turn until ``condition()`` holds; returns the turns it took (real-time deadline)."""
    deadline = time.monotonic() + timeout
    turns = 0
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        turn(reactor)
        turns += 1
    return turns


def advance(reactor: Reactor, clock: Clock, seconds: float, step: float = 1.0) -> None:
    """Move the fake clock by ``seconds``, a ``step`` at a time, turning after each."""
    end = clock.now + seconds
    while clock.now < end:
        clock.now = min(end, clock.now + step)
        turn(reactor)


def readable(socks) -> bool:
    return bool(select.select(list(socks), [], [], 0)[0])


def drain(reactor: Reactor, endpoint: DatagramEndpoint, sent: int) -> None:
    """Turn until the endpoint has read ``sent`` datagrams, or none is left to read (the
    kernel dropped some: a flood is allowed to lose datagrams, not to be miscounted)."""
    socks = list(endpoint._sockets.values())
    quiet_since = None
    while endpoint.received < sent:
        turn(reactor)
        if readable(socks):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 0.05:
            return


def free_udp_port(host: str = LOOP4, family: int = socket.AF_INET) -> int:
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@pytest.fixture
def loop():
    """A reactor on a fake clock; no error may reach its report."""
    clock = Clock()
    errors: list[str] = []
    reactor = Reactor(clock=clock, report_error=errors.append)
    closers = []
    reactor.clock, reactor.errors, reactor.closers = clock, errors, closers
    yield reactor
    for close in reversed(closers):
        close()
    reactor.close()
    assert errors == []


def plain_socket(loop, family: int = socket.AF_INET, host: str = LOOP4) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    loop.closers.append(sock.close)
    return sock


def receive_all(sock: socket.socket) -> list[bytes]:
    got = []
    while True:
        try:
            got.append(sock.recv(65536))
        except BlockingIOError:
            return got


class Peer:
    """A Discovery on loopback with everything it reports written down."""

    def __init__(self, loop, port: int = 0, targets=(), name: str | None = None,
                 fp: bytes = FP, node: str = NODE, listen_port: int = 7000,
                 announce: bool = True, listen: bool = True, seed: int = 1,
                 host: str | None = LOOP4, host6: str | None = None,
                 keep_heard: bool = True) -> None:
        self.loop = loop
        self.name = name
        self.identity = (fp, node, listen_port)
        self.heard: list[tuple[float, object, bool]] = []
        self.junk: list[tuple[float, int]] = []
        self.endpoint: DatagramEndpoint | None = None
        self.unavailable: list = []

        def factory(on_datagram, on_oversized):
            self.endpoint = DatagramEndpoint(loop, port, on_datagram, on_oversized=on_oversized,
                                             on_unavailable=lambda *a: self.unavailable.append(a),
                                             host=host, host6=host6, group=None,
                                             targets=list(targets)).start()
            return self.endpoint

        self.discovery = Discovery(
            loop, factory, self.ours,
            on_heard=lambda heard, new: self.heard.append((loop.time(),
                                                           heard if keep_heard else None, new)),
            on_junk=lambda count: self.junk.append((loop.time(), count)),
            announce=announce, listen=listen, rng=random.Random(seed))
        loop.closers.append(self.discovery.close)

    def ours(self) -> Announcement | None:
        if self.identity is None:
            return None
        fp, node, port = self.identity
        return Announcement(fp, node, port, "chat/2", self.name)

    def start(self) -> "Peer":
        self.discovery.start()
        return self

    @property
    def port(self) -> int:
        return self.endpoint.port


# == 1. the codec =============================================================================

def valid(**fields) -> bytes:
    return announcement(fields.get("fp", FP), fields.get("node", NODE), fields.get("port", 8080),
                        fields.get("version", "chat/2"), fields.get("name", "alice"))


def test_an_announcement_round_trips():
    data = valid()
    assert data == (b"chat.py-announce 1 chat/2 id=" + FP.hex().encode()
                    + b" node=0123456789abcdef port=8080 name=alice\n")
    assert maybe_parse(data) == Announcement(FP, NODE, 8080, "chat/2", "alice")
    assert maybe_parse(valid(name=None)) == Announcement(FP, NODE, 8080, "chat/2", None)
    for port in (1, 65535):
        assert maybe_parse(valid(port=port)).port == port
    unicode_name = "अनिल"
    assert maybe_parse(valid(name=unicode_name)).name == unicode_name
    assert maybe_parse(valid(version="chat/3")).version == "chat/3"    # heard, not spoken


def test_the_longest_announcement_fits_a_datagram():
    longest = valid(port=65535, version="chat/9999", name="\U00012000" * 32)  # 4 bytes each
    assert len(longest) <= MAX_DATAGRAM_BYTES
    assert maybe_parse(longest).name == "\U00012000" * 32


def test_we_refuse_to_announce_what_we_would_refuse_to_read():
    for bad in (dict(fp=b"\x00" * 31), dict(node="0123456789ABCDEF"), dict(node="abc"),
                dict(port=0), dict(port=65536), dict(version="chat2"), dict(name="two words"),
                dict(name="")):
        with pytest.raises(ValueError):
            valid(**bad)


GOOD = valid().decode()
ID_FIELD = "id=" + FP.hex()


def _swap(old: str, new: str) -> bytes:
    assert old in GOOD
    return GOOD.replace(old, new, 1).encode("utf-8")


MALFORMED = {
    "empty": b"",
    "just a newline": b"\n",
    "no newline": GOOD.encode()[:-1],
    "two lines": GOOD.encode() + GOOD.encode(),
    "crlf": GOOD.encode()[:-1] + b"\r\n",
    "wrong magic": _swap("chat.py-announce", "chat.py-announcf"),
    "magic in capitals": _swap("chat.py-announce", "CHAT.PY-ANNOUNCE"),
    "format 2": _swap("announce 1 ", "announce 2 "),
    "no format": _swap("announce 1 ", "announce "),
    "no version": _swap("chat/2 ", ""),
    "version not chat/": _swap("chat/2", "talk/2"),
    "version not a number": _swap("chat/2", "chat/2a"),
    "version in other digits": _swap("chat/2", "chat/٢"),
    "version with a sign": _swap("chat/2", "chat/+2"),
    "missing id": _swap(ID_FIELD + " ", ""),
    "missing node": _swap("node=0123456789abcdef ", ""),
    "missing port": _swap(" port=8080", ""),
    "id twice": _swap(ID_FIELD, ID_FIELD + " " + ID_FIELD),
    "node twice": _swap("node=0123456789abcdef", "node=0123456789abcdef node=0123456789abcdef"),
    "port twice": _swap("port=8080", "port=8080 port=8080"),
    "name twice": _swap("name=alice", "name=alice name=alice"),
    "unknown field twice": _swap("name=alice", "name=alice x=1 x=1"),
    "id upper case": _swap(FP.hex(), FP.hex().upper()),
    "id short": _swap(FP.hex(), FP.hex()[:-2]),
    "id long": _swap(FP.hex(), FP.hex() + "00"),
    "id not hex": _swap(FP.hex(), "g" + FP.hex()[1:]),
    "node short": _swap("node=0123456789abcdef", "node=0123456789abcde"),
    "node not hex": _swap("node=0123456789abcdef", "node=0123456789abcdeg"),
    "node upper case": _swap("node=0123456789abcdef", "node=0123456789ABCDEF"),
    "port 0": _swap("port=8080", "port=0"),
    "port 65536": _swap("port=8080", "port=65536"),
    "port signed": _swap("port=8080", "port=+8080"),
    "port with underscore": _swap("port=8080", "port=8_080"),
    "port in other digits": _swap("port=8080", "port=٨٠٨٠"),
    "port empty": _swap("port=8080", "port="),
    "port too many digits": _swap("port=8080", "port=0000008080"),
    "not key=value": _swap("name=alice", "name=alice stray"),
    "empty key": _swap("name=alice", "name=alice =x"),
    "two spaces": _swap(" port=", "  port="),
    "trailing space": _swap("alice\n", "alice \n"),
    "leading space": b" " + GOOD.encode(),
    "tab": _swap(" port=", "\tport="),
    "control character": _swap("name=alice", "name=alice x=\x07"),
    "escape sequence": _swap("name=alice", "name=alice x=\x1b[2J"),
    "DEL": _swap("name=alice", "name=alice x=\x7f"),
    "C1 control": _swap("name=alice", "name=alice x=\u009b"),
    "bidi override": _swap("name=alice", "name=alice x=\u202e"),
    "no-break space": _swap(" port=", "\u00a0port="),
    "NUL": _swap("name=alice", "name=alice\x00"),
    "not UTF-8": GOOD.encode()[:-1] + b" x=\xff\n",
    "overlong UTF-8": GOOD.encode()[:-1] + b" x=\xc0\xaf\n",
    "UTF-16": GOOD.encode("utf-16"),
    "oversized": GOOD.encode()[:-1] + b" pad=" + b"x" * MAX_DATAGRAM_BYTES + b"\n",
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_every_malformed_kind_is_refused(kind):
    assert maybe_parse(MALFORMED[kind]) is None


def test_oversize_is_refused_at_the_limit_not_before():
    base = GOOD.encode()[:-1] + b" pad="
    fits = base + b"x" * (MAX_DATAGRAM_BYTES - len(base) - 1) + b"\n"
    assert len(fits) == MAX_DATAGRAM_BYTES and maybe_parse(fits) is not None
    too_long = base + b"x" * (MAX_DATAGRAM_BYTES - len(base)) + b"\n"
    assert len(too_long) == MAX_DATAGRAM_BYTES + 1 and maybe_parse(too_long) is None


@pytest.mark.parametrize("name", ["all", "1234", "a:b", "x" * 33, "", "e" + "\u0301" * 5,
                                  "\u0301e", "a/b", "🙂"])
def test_a_name_that_breaks_the_rule_is_dropped_not_the_announcement(name):
    heard = maybe_parse(_swap("name=alice", f"name={name}"))
    assert heard == Announcement(FP, NODE, 8080, "chat/2", None)


def test_a_name_is_normalised_as_the_rule_says():
    assert maybe_parse(_swap("name=alice", "name=Jose\u0301")).name == "Jos\u00e9"


def test_unknown_fields_are_tolerated_once_each_in_any_order():
    reordered = (f"chat.py-announce 1 chat/2 future=yes port=8080 name=alice x= "
                 f"node={NODE} {ID_FIELD} y=a=b\n").encode()
    assert maybe_parse(reordered) == Announcement(FP, NODE, 8080, "chat/2", "alice")


def test_every_truncation_is_refused_and_every_prefix_of_junk_is_too():
    """UDP delivers a datagram whole or not at all, but a truncated one (a buffer too
    small somewhere) must never read as a shorter port, ID or name."""
    for data in (valid(), valid(name=None), valid(port=65535, name="अनिल")):
        whole = maybe_parse(data)
        for length in range(len(data)):
            cut = maybe_parse(data[:length])
            assert cut is None or (cut.fingerprint, cut.port) == (whole.fingerprint, whole.port)
            assert cut is None        # the final newline makes it stricter than that
        assert maybe_parse(data) == whole


def test_random_mutations_never_crash_and_never_parse_to_garbage():
    rng = random.Random(7)
    data = bytearray(valid())
    for _ in range(5000):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        heard = maybe_parse(bytes(mutated))
        if heard is not None:      # a change to a byte that matters cannot survive as-is
            assert len(heard.fingerprint) == 32 and 1 <= heard.port <= 65535
            assert len(heard.node_id) == 16 and heard.version.startswith("chat/")


# == the endpoint ==============================================================================

def endpoint(loop, on_datagram, port: int = 0, targets=(), **kwargs) -> DatagramEndpoint:
    kwargs.setdefault("host", LOOP4)
    kwargs.setdefault("host6", None)
    ep = DatagramEndpoint(loop, port, on_datagram, group=None, targets=list(targets),
                          **kwargs).start()
    loop.closers.append(ep.close)
    return ep


def test_the_endpoint_delivers_with_the_senders_address_and_drops_oversized(loop):
    got, big = [], []
    ep = endpoint(loop, lambda *a: got.append(a), on_oversized=lambda *a: big.append(a))
    sender = plain_socket(loop)
    sender.sendto(b"x" * MAX_DATAGRAM_BYTES, (LOOP4, ep.port))
    sender.sendto(b"y" * (MAX_DATAGRAM_BYTES + 1), (LOOP4, ep.port))
    sender.sendto(b"z" * 60000, (LOOP4, ep.port))
    sender.sendto(b"", (LOOP4, ep.port))
    turn_until(loop, lambda: ep.received == 4)
    me = sender.getsockname()
    assert got == [(b"x" * MAX_DATAGRAM_BYTES, LOOP4, me[1]), (b"", LOOP4, me[1])]
    assert big == [(LOOP4, me[1])] * 2 and ep.oversized == 2
    assert ep.families == [socket.AF_INET]


def test_one_readiness_event_reads_a_bounded_batch(loop):
    got = []
    ep = endpoint(loop, lambda *a: got.append(a))
    sender = plain_socket(loop)
    for i in range(RECV_BATCH + 10):
        sender.sendto(b"%d" % i, (LOOP4, ep.port))
    assert readable(ep._sockets.values())
    ep._handlers[0].on_readable()
    assert len(got) == RECV_BATCH
    turn_until(loop, lambda: len(got) == RECV_BATCH + 10)


def test_sending_goes_to_each_target_and_errors_stay_inside(loop):
    a, b = plain_socket(loop), plain_socket(loop)
    targets = [(socket.AF_INET, LOOP4, a.getsockname()[1]),
               (socket.AF_INET, LOOP4, 0),                  # EINVAL: not sent, not raised
               (socket.AF_INET6, "::1", 9),                 # no IPv6 socket: left out
               (socket.AF_INET, LOOP4, b.getsockname()[1])]
    ep = endpoint(loop, lambda *a: None, targets=targets)
    assert [family for family, _ in ep.targets()] == [socket.AF_INET] * 3
    assert ep.send(b"hi") == 2
    assert ep.send_failures == 1 and ep.sent == 2
    assert receive_all(a) == [b"hi"] and receive_all(b) == [b"hi"]
    ep.close()
    ep.close()                                              # idempotent
    assert ep.send(b"hi") == 0 and ep.closed


def test_a_family_that_cannot_open_is_reported_once_and_the_other_works(loop):
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # no SO_REUSEADDR: exclusive
    loop.closers.append(holder.close)
    holder.bind((LOOP4, 0))
    port = holder.getsockname()[1]
    problems = []
    ep = endpoint(loop, lambda *a: None, port=port, on_unavailable=lambda *a: problems.append(a))
    assert [(family, type(exc)) for family, exc in problems] == [(socket.AF_INET, OSError)]
    assert ep.families == [] and ep.port == 0 and ep.send(b"x") == 0
    if _ipv6_loopback_reason() is None:
        problems.clear()
        got = []
        ep6 = endpoint(loop, lambda *a: got.append(a), port=port, host6="::1",
                       on_unavailable=lambda *a: problems.append(a))
        assert [family for family, _ in problems] == [socket.AF_INET]
        assert ep6.families == [socket.AF_INET6] and ep6.port == port
        sender = plain_socket(loop, socket.AF_INET6, "::1")
        sender.sendto(b"v6", ("::1", port))
        turn_until(loop, lambda: got)
        assert got[0][:2] == (b"v6", "::1")


def test_a_bug_in_the_callback_is_reported_once_and_closes_the_endpoint(loop):
    def broken(data, host, port):
        raise RuntimeError("bug")
    ep = endpoint(loop, broken)
    sender = plain_socket(loop)
    sender.sendto(b"a", (LOOP4, ep.port))
    sender.sendto(b"b", (LOOP4, ep.port))
    turn_until(loop, lambda: ep.closed)
    assert loop.errors == ["internal error in _Receiver: RuntimeError: bug"]
    loop.errors.clear()


def test_sender_addresses_are_written_as_people_write_them():
    assert sender_address(("::ffff:10.0.0.5", 21030, 0, 0)) == ("10.0.0.5", 21030)
    assert sender_address(("2001:db8::1", 5, 0, 0)) == ("2001:db8::1", 5)
    index, name = socket.if_nameindex()[0]
    assert sender_address(("fe80::1", 5, 0, index)) == (f"fe80::1%{name}", 5)
    assert sender_address(("fe80::1", 5, 0, 987654)) == ("fe80::1%987654", 5)


def test_interfaces_are_read_without_traffic():
    found = datagram.interfaces()
    assert found, "no interface at all"
    for interface in found:
        assert interface.index > 0 and interface.name
        if interface.flags & 0x8:                         # IFF_LOOPBACK
            assert not interface.usable and not interface.multicast
        if interface.broadcast is not None:
            socket.inet_aton(interface.broadcast)
    if any(name == "lo" for _, name in socket.if_nameindex()):
        lo = next(i for i in found if i.name == "lo")
        assert not lo.usable


# == 2. two peers on loopback ===================================================================

def test_two_peers_hear_each_other_and_not_themselves(loop):
    port_a, port_b = free_udp_port(), free_udp_port()
    both = [(socket.AF_INET, LOOP4, port_a), (socket.AF_INET, LOOP4, port_b)]
    a = Peer(loop, port_a, both, name="alice", fp=b"\xaa" * 32, node="a" * 16, listen_port=7001)
    b = Peer(loop, port_b, both, name="bob", fp=b"\xbb" * 32, node="b" * 16, listen_port=7002,
             seed=2)
    a.start()
    b.start()                       # a's first announcement found nobody at port_b yet
    turns = turn_until(loop, lambda: a.heard)
    assert turns < 10
    loop.clock.now += ANNOUNCE_EVERY_S + ANNOUNCE_JITTER_S          # both announce again
    turns = turn_until(loop, lambda: b.heard and a.discovery.own and b.discovery.own)
    assert turns < 10
    for me, other, other_port in ((a, "bob", 7002), (b, "alice", 7001)):
        (heard,) = me.discovery.nearby()
        assert (heard.host, heard.port, heard.name, heard.version) == (LOOP4, other_port, other,
                                                                      "chat/2")
        assert heard.fingerprint == (b"\xbb" if other == "bob" else b"\xaa") * 32
        assert me.heard[0][2] is True                   # new
        assert me.discovery.own >= 1 and me.discovery.junk == 0
    assert a.heard[-1][1].first_heard < a.heard[-1][1].last_heard
    assert [new for _, _, new in a.heard] == [True] + [False] * (len(a.heard) - 1)


def test_the_same_identity_in_another_instance_is_someone_else(loop):
    port_a, port_b = free_udp_port(), free_udp_port()
    both = [(socket.AF_INET, LOOP4, port_a), (socket.AF_INET, LOOP4, port_b)]
    a = Peer(loop, port_a, both, node="a" * 16)
    b = Peer(loop, port_b, both, node="b" * 16).start()
    a.start()
    turn_until(loop, lambda: b.heard)
    assert b.heard[0][1].node_id == "a" * 16 and b.heard[0][1].fingerprint == FP


# == 3. floods ==================================================================================

def junk_payloads(count: int = 256) -> list[bytes]:
    rng = random.Random(3)
    good = valid()
    made = [b"", b"\n", b"chat.py-announce", good[:-1], good.upper(), good + good]
    while len(made) < count:
        kind = len(made) % 6
        if kind == 0:
            made.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
        elif kind == 1:                                         # oversized
            made.append(b"x" * rng.randrange(MAX_DATAGRAM_BYTES + 1, 4000))
        elif kind == 2:                                         # oversized, valid start
            made.append(good[:-1] + b" pad=" + b"p" * rng.randrange(MAX_DATAGRAM_BYTES, 1500)
                        + b"\n")
        elif kind == 3:                                         # one byte changed
            mutated = bytearray(good)
            mutated[rng.randrange(len(good))] = rng.choice(b"\x00\xff\x1b")
            made.append(bytes(mutated))
        elif kind == 4:                                         # right magic, then nonsense
            made.append(b"chat.py-announce 1 " + bytes(rng.randrange(256) for _ in range(64)))
        else:                                                   # not UTF-8
            made.append(good[:-1] + b" x=\xed\xa0\x80\n")
    assert not any(maybe_parse(p) for p in made)
    return made


def flood(loop, peer: Peer, payloads, total: int) -> tuple[int, float, int, int]:
    """Send ``total`` datagrams (cycling through ``payloads``, or calling it) from a plain
    socket, CHUNK at a time, letting the reactor read each chunk and the fake clock move.
    Returns (sent, real seconds, memory growth, peak memory growth)."""
    sender = plain_socket(loop)
    target = (LOOP4, peer.port)
    make = payloads if callable(payloads) else (lambda i: payloads[i % len(payloads)])
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        started = time.perf_counter()
        sent = 0
        while sent < total:
            for _ in range(min(CHUNK, total - sent)):
                sender.sendto(make(sent), target)
                sent += 1
            drain(loop, peer.endpoint, sent)
            loop.clock.now += CHUNK_FAKE_S
            turn(loop)
        elapsed = time.perf_counter() - started
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return sent, elapsed, current - baseline, peak - baseline


FIGURES: dict = {}


def test_a_junk_flood_is_counted_summarised_once_a_second_and_costs_no_memory(loop):
    peer = Peer(loop, announce=False).start()
    payloads = junk_payloads()
    sent, elapsed, growth, peak = flood(loop, peer, payloads, FLOOD)
    loop.clock.now += 1.0                                   # the last summary's second
    turn(loop)
    ep = peer.endpoint
    FIGURES["junk"] = dict(sent=sent, received=ep.received, oversized=ep.oversized,
                           notices=len(peer.junk), seconds=round(elapsed, 3),
                           growth=growth, peak=peak)
    print("junk flood:", FIGURES["junk"])
    assert ep.received > FLOOD // 2                          # the kernel may drop a few
    assert sum(count for _, count in peer.junk) == ep.received == peer.discovery.junk
    assert ep.oversized > 0
    times = [t for t, _ in peer.junk]
    assert all(later - earlier >= 1.0 for earlier, later in zip(times, times[1:]))
    assert len(times) <= int(FLOOD / CHUNK * CHUNK_FAKE_S) + 2
    assert peer.heard == [] and peer.discovery.nearby() == []
    assert growth < MEMORY_BOUND and peak < MEMORY_BOUND, (growth, peak)


def test_a_flood_of_forged_ids_keeps_the_table_bounded_and_the_calls_rate_limited(loop):
    peer = Peer(loop, announce=False, keep_heard=False).start()   # the test's own memory
    sizes = []

    def forged(i: int) -> bytes:
        if i % 500 == 0:
            sizes.append(len(peer.discovery._table))
        return announcement(i.to_bytes(32, "big"), "%016x" % i, 1 + i % 65535, "chat/2",
                            "n%d" % i)

    sent, elapsed, growth, peak = flood(loop, peer, forged, FLOOD)
    ep = peer.endpoint
    FIGURES["forged"] = dict(sent=sent, received=ep.received, calls=len(peer.heard),
                             seconds=round(elapsed, 3), growth=growth, peak=peak)
    print("forged flood:", FIGURES["forged"])
    assert peer.discovery.valid == ep.received > FLOOD // 2
    assert max(sizes) <= MAX_HEARD
    nearby = peer.discovery.nearby()
    assert len(nearby) == MAX_HEARD
    assert [h.last_heard for h in nearby] == sorted((h.last_heard for h in nearby), reverse=True)
    times = [t for t, _, _ in peer.heard]
    window = MAX_HEARD_CALLS_PER_S
    assert all(times[i + window] - times[i] >= 1.0 for i in range(len(times) - window))
    assert len(times) <= (FLOOD / CHUNK * CHUNK_FAKE_S + 1) * window
    assert all(new for _, _, new in peer.heard)
    assert peer.discovery.junk == 0
    assert growth < MEMORY_BOUND and peak < MEMORY_BOUND, (growth, peak)


def test_a_newcomer_replaces_the_entry_heard_longest_ago(loop):
    peer = Peer(loop, announce=False).start()
    sender = plain_socket(loop)

    def hear(i: int) -> None:
        expected = peer.discovery.valid + 1
        loop.clock.now += 0.1
        sender.sendto(announcement(i.to_bytes(32, "big"), "%016x" % i, 1, "chat/2", None),
                      (LOOP4, peer.port))
        turn_until(loop, lambda: peer.discovery.valid == expected)

    for i in range(MAX_HEARD):
        hear(i)
    hear(0)                 # heard again: now 1 is the one heard longest ago
    hear(MAX_HEARD)         # a newcomer to a full table
    kept = {h.fingerprint[-1] for h in peer.discovery.nearby()}
    assert len(kept) == MAX_HEARD and 0 in kept and 1 not in kept and MAX_HEARD in kept
    assert peer.discovery.nearby()[0].fingerprint[-1] == MAX_HEARD


# == 4. time: forgetting, re-announcing, the announce_now limit =================================

def test_an_announcer_is_forgotten_after_90_s_and_is_new_when_heard_again(loop):
    peer = Peer(loop, announce=False).start()
    sender = plain_socket(loop)
    data = valid(fp=b"\x01" * 32, name="carol")
    sender.sendto(data, (LOOP4, peer.port))
    turn_until(loop, lambda: peer.heard)
    loop.clock.now += 30
    sender.sendto(data, (LOOP4, peer.port))
    turn_until(loop, lambda: len(peer.heard) == 2)
    assert [new for _, _, new in peer.heard] == [True, False]
    first, last = peer.heard[1][1].first_heard, peer.heard[1][1].last_heard
    assert last - first == 30
    advance(loop, loop.clock, FORGET_AFTER_S - 1)
    assert len(peer.discovery.nearby()) == 1
    advance(loop, loop.clock, 1)
    assert peer.discovery._table == {}                      # the timer purged it
    assert peer.discovery.nearby() == []
    sender.sendto(data, (LOOP4, peer.port))
    turn_until(loop, lambda: len(peer.heard) == 3)
    assert peer.heard[2][2] is True and peer.heard[2][1].first_heard == loop.clock.now


def test_nearby_is_newest_first_and_forgets_by_the_time_asked(loop):
    peer = Peer(loop, announce=False).start()
    sender = plain_socket(loop)
    for i in range(3):
        sender.sendto(valid(fp=bytes([i]) * 32), (LOOP4, peer.port))
        turn_until(loop, lambda: len(peer.heard) == i + 1)
        loop.clock.now += 10
    now = loop.clock.now
    assert [h.fingerprint[0] for h in peer.discovery.nearby()] == [2, 1, 0]
    assert [h.fingerprint[0] for h in peer.discovery.nearby(now + 75)] == [2]


def test_we_announce_at_start_and_every_30_s(loop):
    target = plain_socket(loop)
    peer = Peer(loop, targets=[(socket.AF_INET, LOOP4, target.getsockname()[1])],
                name="dave", listen=False)
    start = loop.clock.now
    peer.start()
    arrivals = []

    def collect():
        for data in receive_all(target):
            assert maybe_parse(data) == peer.ours()
            arrivals.append(loop.clock.now - start)

    collect()
    assert arrivals == [0]
    for _ in range(600):                                    # ten minutes, a second a step
        advance(loop, loop.clock, 1)
        collect()
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
    assert 600 // (ANNOUNCE_EVERY_S + ANNOUNCE_JITTER_S) <= len(gaps) <= 600 // (
        ANNOUNCE_EVERY_S - ANNOUNCE_JITTER_S)
    assert all(ANNOUNCE_EVERY_S - ANNOUNCE_JITTER_S <= gap <= ANNOUNCE_EVERY_S
               + ANNOUNCE_JITTER_S + 1 for gap in gaps), gaps
    assert len(set(gaps)) > 1                               # jittered, not in step


def test_announce_now_is_limited_to_one_a_second_and_sends_the_last_name(loop):
    target = plain_socket(loop)
    peer = Peer(loop, targets=[(socket.AF_INET, LOOP4, target.getsockname()[1])],
                name="erin", listen=False)
    peer.start()
    assert [maybe_parse(d).name for d in receive_all(target)] == ["erin"]
    for name in ("frank", "grace", "heidi"):               # three changes within the second
        peer.name = name
        peer.discovery.announce_now()
        turn(loop)
    assert receive_all(target) == []
    advance(loop, loop.clock, 0.5, step=0.5)
    assert receive_all(target) == []
    advance(loop, loop.clock, 0.5, step=0.5)
    assert [maybe_parse(d).name for d in receive_all(target)] == ["heidi"]
    advance(loop, loop.clock, 1.5, step=1.5)
    peer.name = "ivan"
    peer.discovery.announce_now()                           # a second has passed: at once
    assert [maybe_parse(d).name for d in receive_all(target)] == ["ivan"]
    sent_at = loop.clock.now
    advance(loop, loop.clock, ANNOUNCE_EVERY_S - ANNOUNCE_JITTER_S - 0.5)
    assert receive_all(target) == []                        # the 30 s count from the last
    advance(loop, loop.clock, 2 * ANNOUNCE_JITTER_S + 1)
    assert len(receive_all(target)) == 1 and loop.clock.now - sent_at <= 34


def test_without_an_identity_we_listen_but_do_not_announce(loop):
    target = plain_socket(loop)
    peer = Peer(loop, targets=[(socket.AF_INET, LOOP4, target.getsockname()[1])])
    peer.identity = None
    peer.start()
    peer.discovery.announce_now()
    advance(loop, loop.clock, 100, step=5)
    assert receive_all(target) == [] and peer.discovery.announced == 0
    plain_socket(loop).sendto(valid(), (LOOP4, peer.port))
    turn_until(loop, lambda: peer.heard)
    peer.identity = (b"\x02" * 32, NODE, 1)                 # it comes: the next cycle says it
    advance(loop, loop.clock, ANNOUNCE_EVERY_S + ANNOUNCE_JITTER_S)
    sent = receive_all(target)
    assert sent and all(maybe_parse(d).fingerprint == b"\x02" * 32 for d in sent)


def test_junk_is_told_at_once_then_summed_a_second_after_the_last_notice(loop):
    peer = Peer(loop, announce=False).start()
    sender = plain_socket(loop)
    sender.sendto(b"junk", (LOOP4, peer.port))
    turn_until(loop, lambda: peer.junk)
    assert peer.junk == [(1000.0, 1)]
    for step in range(1, 6):
        loop.clock.now = 1000.0 + step / 10
        sender.sendto(b"junk", (LOOP4, peer.port))
        sender.sendto(b"j" * 2000, (LOOP4, peer.port))
        turn_until(loop, lambda: peer.discovery.junk == 1 + 2 * step)
    assert len(peer.junk) == 1
    loop.clock.now = 1000.99
    turn(loop)
    assert len(peer.junk) == 1
    loop.clock.now = 1001.0                                 # a second after the first notice
    turn(loop)
    assert peer.junk == [(1000.0, 1), (1001.0, 10)]
    advance(loop, loop.clock, 5)
    assert len(peer.junk) == 2                              # nothing more to tell
    sender.sendto(b"junk", (LOOP4, peer.port))
    turn_until(loop, lambda: len(peer.junk) == 3)
    assert peer.junk[2] == (loop.clock.now, 1)


def test_close_stops_timers_and_the_endpoint(loop):
    target = plain_socket(loop)
    peer = Peer(loop, targets=[(socket.AF_INET, LOOP4, target.getsockname()[1])]).start()
    plain_socket(loop).sendto(b"junk", (LOOP4, peer.port))
    turn_until(loop, lambda: peer.junk)
    peer.discovery.close()
    peer.discovery.close()
    assert peer.endpoint.closed
    receive_all(target)
    advance(loop, loop.clock, 200, step=10)
    assert receive_all(target) == []
    assert len(loop._timers) == 0


def test_listen_false_ignores_what_arrives(loop):
    peer = Peer(loop, listen=False).start()
    plain_socket(loop).sendto(valid(fp=b"\x03" * 32), (LOOP4, peer.port))
    plain_socket(loop).sendto(b"junk", (LOOP4, peer.port))
    turn_until(loop, lambda: peer.endpoint.received == 2)
    assert peer.heard == [] and peer.junk == [] and peer.discovery.nearby() == []


# == 5. IPv6 =====================================================================================

def _ipv6_loopback_reason() -> str | None:
    if not socket.has_ipv6:
        return "this Python has no IPv6 (socket.has_ipv6 is false)"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        return f"cannot bind ::1 here: {exc}"
    return None


def test_an_ipv6_endpoint_delivers_and_a_peer_is_heard_with_its_ipv6_address(loop):
    reason = _ipv6_loopback_reason()
    if reason is not None:
        pytest.skip(reason)
    got = []
    receiver = endpoint(loop, lambda *a: got.append(a), host=None, host6="::1")
    sender = endpoint(loop, lambda *a: None, host=None, host6="::1",
                      targets=[(socket.AF_INET6, "::1", receiver.port)])
    assert sender.send(b"over six") == 1
    turn_until(loop, lambda: got)
    assert got == [(b"over six", "::1", sender.port)]

    port_a, port_b = free_udp_port("::1", socket.AF_INET6), free_udp_port("::1", socket.AF_INET6)
    both = [(socket.AF_INET6, "::1", port_a), (socket.AF_INET6, "::1", port_b)]
    b = Peer(loop, port_b, both, host=None, host6="::1", fp=b"\xbb" * 32).start()
    Peer(loop, port_a, both, host=None, host6="::1", name="six").start()
    turn_until(loop, lambda: b.heard)
    (heard,) = b.discovery.nearby()
    assert (heard.host, heard.port, heard.name) == ("::1", 7000, "six")


# == the real targets, in network namespaces ===================================================

NS_SCRIPT = textwrap.dedent("""
    import json, socket, sys
    sys.path.insert(0, sys.argv[1])
    from network.discovery import Announcement, Discovery, MULTICAST_GROUP, lan_endpoint_factory
    from reactor.loop import Reactor

    me, port = sys.argv[2], int(sys.argv[3])
    reactor = Reactor()
    heard, problems = {}, []
    factory = lan_endpoint_factory(reactor, port, lambda f, e: problems.append(str(e)))
    endpoints = []

    def made(*callbacks):
        endpoints.append(factory(*callbacks))
        return endpoints[-1]

    def on_heard(h, new):
        heard.setdefault("v6" if ":" in h.host else "v4", h.host)
        if len(heard) == 2 and not heard.get("done"):
            heard["done"] = True        # go on announcing a while, for the other's sake
            reactor.call_later(1.0, reactor.stop)

    fp = (b"\\xaa" if me == "a" else b"\\xbb") * 32
    d = Discovery(reactor, made, lambda: Announcement(fp, (me * 16), 7000, "chat/2", me),
                  on_heard, lambda n: None)
    d.start()

    def again():
        d.announce_now()
        reactor.call_later(0.2, again)

    reactor.call_later(0.2, again)
    reactor.call_later(8.0, reactor.stop)
    reactor.run()
    targets = [[f, list(a)] for f, a in endpoints[0].targets()]
    heard.pop("done", None)
    print(json.dumps(dict(heard=heard, own=d.own, targets=targets, problems=problems)))
""")


def test_in_two_namespaces_peers_hear_each_other_by_broadcast_and_multicast(tmp_path):
    import netns
    reason = netns.why_not_available()
    if reason is not None:
        pytest.skip(reason)
    net = netns.TestNetwork()
    try:
        a, b = net.add_host("a"), net.add_host("b")
        for host in (a, b):         # no duplicate address detection: link-local at once
            subprocess.run(host.prefix + ["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
                                          "net.ipv6.conf.default.accept_dad=0"],
                           capture_output=True)
        subnet = net.link(a, b, default_route=False)
        script = tmp_path / "ns_discovery.py"
        script.write_text(NS_SCRIPT)
        port = discovery.DISCOVERY_PORT
        procs = {host.name: subprocess.Popen(host.prefix + [sys.executable, str(script),
                                                            str(ROOT), host.name, str(port)],
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for host in (a, b)}
        results = {}
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=15)
            assert proc.returncode == 0, err.decode()
            results[name] = json.loads(out)
    finally:
        net.close()
    for me, other in (("a", b), ("b", a)):
        result = results[me]
        assert result["problems"] == []
        assert result["heard"].get("v4") == other.address, result
        assert result["heard"].get("v6", "").startswith("fe80::"), result
        assert result["heard"]["v6"].endswith("%" + (a if me == "a" else b).iface), result
        assert result["own"] >= 1                             # our own came back, ignored
        targets = {(family, tuple(addr[:2])) for family, addr in result["targets"]}
        assert (socket.AF_INET, (f"{subnet}.255", port)) in targets
        assert (socket.AF_INET6, (discovery.MULTICAST_GROUP, port)) in targets
        assert all(not addr[0].startswith("127.") for _, addr in result["targets"])

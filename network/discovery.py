"""Local discovery: chat.py peers on the same link say who they are, in small datagrams.

Like Syncthing's local discovery, every chat.py sends a one-datagram
*announcement* (its ID, instance, listening port, protocol version and name)
to every interface's IPv4 broadcast address and to an IPv6 link-local
multicast group: at start, every ``ANNOUNCE_EVERY_S`` (with a little jitter,
so peers started together do not stay in step), and when its name changes.
What was heard within ``FORGET_AFTER_S`` is :meth:`Discovery.nearby`.

An announcement is a **claim, never proof**: anyone on the link can send one
with any ID, name or port. The host we keep is the address the datagram came
from, never an address it claims; whether the ID is real is settled later by
TLS, when someone connects (not here). So everything a stranger can send is
bounded: the datagram's size (``MAX_DATAGRAM_BYTES``, checked before anything
else), the entries kept (``MAX_HEARD``: a newcomer replaces the entry heard
longest ago, so a flood of forged IDs can push entries out but never grow
memory), the calls made to our user's side (``MAX_HEARD_CALLS_PER_S``; the
table is still updated) and the junk notices (one summary per
``JUNK_NOTICE_EVERY_S`` at most). A junk datagram costs a length check and a
prefix comparison before any decoding.

The datagram, UTF-8, one line ending in ``\\n`` (so any truncation is refused,
never read as a shorter port or name)::

    chat.py-announce 1 chat/2 id=<64 hex> node=<16 hex> port=<1-65535> [name=<name>]\\n

``chat.py-announce 1`` is the magic and the format's version; ``chat/2`` the
chat protocol the sender speaks (any ``chat/<n>`` is accepted: telling the
user that a nearby peer speaks a newer one is the integrator's business).
``id`` is the lowercase hex SHA-256 of the sender's certificate
(``network.identity``), ``node`` its instance (as in the hello), ``port``
where it listens. The parser is as strict as the hello's (``network.wire``):
every character printable (no control or format characters, no space but
the single ASCII one between fields), every known field exactly once, ASCII
digits only. Unknown ``key=value`` fields are allowed once each, so a later
version can add some. A name that breaks the name rule (``network.names``)
does not spoil the rest: the announcement is kept, with no name.
"""

from __future__ import annotations

import collections
import random
from dataclasses import dataclass
from typing import Callable

from reactor.datagram import MAX_DATAGRAM_BYTES, DatagramEndpoint
from reactor.loop import Reactor
from reactor.netutil import maybe_ascii_number, maybe_port

from .names import BadName, check_name, maybe_name
from .wire import NODE_ID_CHARS

MAGIC = "chat.py-announce"
FORMAT = "1"                       # this datagram's layout; chat/<n> is the protocol
DISCOVERY_PORT = 21030             # UDP, on every chat.py of the link
MULTICAST_GROUP = "ff12::6368:6174"    # transient, link-local scope; "chat" in hex
ANNOUNCE_EVERY_S = 30.0
ANNOUNCE_JITTER_S = 3.0            # each interval is ANNOUNCE_EVERY_S +- this, at random
MIN_ANNOUNCE_GAP_S = 1.0           # announce_now: at most one announcement per second
FORGET_AFTER_S = 90.0              # three announcements missed: gone
MAX_HEARD = 64                     # entries kept, at most
MAX_HEARD_CALLS_PER_S = 20         # on_heard calls in any one second, at most
JUNK_NOTICE_EVERY_S = 1.0          # on_junk calls: at most one per second
FINGERPRINT_BYTES = 32
_VERSION_PREFIX = "chat/"
_MAX_VERSION_DIGITS = 4
_PREFIX = f"{MAGIC} {FORMAT} ".encode("ascii")
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Announcement:
    __slots__ = ("fingerprint", "node_id", "port", "version", "name")
    fingerprint: bytes       # SHA-256 of the sender's certificate, as it claims
    node_id: str             # its instance: 16 lowercase hex digits
    port: int                # where it says it listens (TCP)
    version: str             # the chat protocol it says it speaks, "chat/2"
    name: str | None         # what it calls itself (a label; None: none, or a bad one)


@dataclass(frozen=True)
class Heard:
    """One announcer as last heard. ``host`` is where the datagram came from (as
    received, ``%interface`` kept for a link-local IPv6 address); everything else
    is what it claims. Times are the reactor's clock."""
    __slots__ = ("fingerprint", "node_id", "name", "host", "port", "version",
                 "first_heard", "last_heard")
    fingerprint: bytes
    node_id: str
    name: str | None
    host: str
    port: int
    version: str
    first_heard: float
    last_heard: float

    @property
    def key(self) -> tuple[bytes, str, str, int]:
        return (self.fingerprint, self.node_id, self.host, self.port)


# -- the datagram ------------------------------------------------------------------------

def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and _HEX.issuperset(text)


def _is_version(text: str) -> bool:
    return (text.startswith(_VERSION_PREFIX)
            and maybe_ascii_number(text[len(_VERSION_PREFIX):], _MAX_VERSION_DIGITS) is not None)


def announcement(fp: bytes, node_id: str, port: int, version: str,
                 name: str | None) -> bytes:
    """Our announcement as one datagram; ``ValueError`` for what we would refuse to read
    (a name that breaks the rule included)."""
    if len(fp) != FINGERPRINT_BYTES:
        raise ValueError("fingerprint")
    if not _is_hex(node_id, NODE_ID_CHARS):
        raise ValueError("node_id")
    if not 1 <= port <= 65535:
        raise ValueError("port")
    if not _is_version(version):
        raise ValueError("version")
    words = [MAGIC, FORMAT, version, f"id={fp.hex()}", f"node={node_id}", f"port={port}"]
    if name is not None:
        try:
            words.append(f"name={check_name(name)}")
        except BadName:
            raise ValueError("name") from None
    data = (" ".join(words) + "\n").encode("utf-8")
    if len(data) > MAX_DATAGRAM_BYTES:      # cannot happen with the name rule's length
        raise ValueError("too long")
    return data


def maybe_parse(data: bytes) -> Announcement | None:
    """The announcement in ``data``, or ``None`` for anything else (cheapest tests first)."""
    if len(data) > MAX_DATAGRAM_BYTES or not data.startswith(_PREFIX) \
            or not data.endswith(b"\n"):
        return None
    try:
        text = data[len(_PREFIX):-1].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.isprintable():      # control, format and odd space characters; a 2nd line
        return None
    words = text.split(" ")
    version = words[0]
    if not _is_version(version):
        return None
    fields: dict[str, str] = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or not key or key in fields:
            return None             # not key=value (an empty word: two spaces), or twice
        fields[key] = value
    id_text, node_id, port_text = fields.get("id"), fields.get("node"), fields.get("port")
    if id_text is None or node_id is None or port_text is None:
        return None
    if not _is_hex(id_text, 2 * FINGERPRINT_BYTES) or not _is_hex(node_id, NODE_ID_CHARS):
        return None
    port = maybe_port(port_text)
    if port is None:
        return None
    name_text = fields.get("name")
    return Announcement(bytes.fromhex(id_text), node_id, port, version,
                        None if name_text is None else maybe_name(name_text))


# -- the announcer and listener ----------------------------------------------------------

EndpointFactory = Callable[[Callable[[bytes, str, int], None], Callable[[str, int], None]],
                           DatagramEndpoint]


def lan_endpoint_factory(reactor: Reactor, port: int = DISCOVERY_PORT,
                         on_unavailable: Callable[[int, OSError], None] | None = None
                         ) -> EndpointFactory:
    """The real thing: every interface's broadcast address and the multicast group."""
    def factory(on_datagram: Callable[[bytes, str, int], None],
                on_oversized: Callable[[str, int], None]) -> DatagramEndpoint:
        return DatagramEndpoint(reactor, port, on_datagram, on_oversized=on_oversized,
                                on_unavailable=on_unavailable,
                                group=MULTICAST_GROUP).start()
    return factory


class Discovery:
    """Announces us, and keeps what it hears (bounded) for :meth:`nearby`.

    ``endpoint_factory(on_datagram, on_oversized)`` returns a started
    :class:`DatagramEndpoint` (tests give one on loopback). ``ours()`` is our
    current announcement, or ``None`` (no identity: we only listen); it is asked
    for each announcement sent and each valid one heard, so it should be cheap.
    ``on_heard(heard, new)`` hears of each valid announcement (``new``: the first
    since its key was unknown or forgotten; a ``new`` the rate limit swallowed is
    told with the key's next call). ``on_junk(count)``: how many datagrams were
    refused since the last notice.
    """

    __slots__ = ("_reactor", "_endpoint_factory", "_ours", "_on_heard", "_on_junk",
                 "_announce", "_listen", "_rng", "_endpoint", "_table", "_untold",
                 "_calls", "_last_sent", "_periodic", "_deferred", "_purge_timer",
                 "_junk_pending", "_junk_told_at", "_junk_timer", "started", "closed",
                 "valid", "junk", "own", "announced")

    def __init__(self, reactor: Reactor, endpoint_factory: EndpointFactory,
                 ours: Callable[[], Announcement | None],
                 on_heard: Callable[[Heard, bool], None],
                 on_junk: Callable[[int], None],
                 announce: bool = True, listen: bool = True,
                 rng: random.Random | None = None) -> None:
        self._reactor = reactor
        self._endpoint_factory = endpoint_factory
        self._ours = ours
        self._on_heard = on_heard
        self._on_junk = on_junk
        self._announce = announce
        self._listen = listen
        self._rng = rng if rng is not None else random.Random()
        self._endpoint: DatagramEndpoint | None = None
        # Oldest first: a key heard again moves to the end, so the first entry is
        # always the one heard longest ago (the one to forget or replace).
        self._table: dict[tuple, Heard] = {}
        self._untold: set[tuple] = set()    # new keys whose on_heard the limit swallowed
        self._calls: collections.deque = collections.deque(maxlen=MAX_HEARD_CALLS_PER_S)
        self._last_sent: float | None = None
        self._periodic = None
        self._deferred = None           # announce_now waiting for its second
        self._purge_timer = None
        self._junk_pending = 0
        self._junk_told_at: float | None = None
        self._junk_timer = None
        self.started = False
        self.closed = False
        self.valid = 0                  # counters: valid announcements of others,
        self.junk = 0                   # datagrams refused,
        self.own = 0                    # our own announcements heard back,
        self.announced = 0              # announcements we sent

    # -- announcing -------------------------------------------------------------------

    def start(self) -> None:
        if self.started or self.closed:
            return
        self.started = True
        if not (self._announce or self._listen):
            return
        self._endpoint = self._endpoint_factory(self._on_datagram, self._on_oversized)
        if self._announce:
            self._send()

    def announce_now(self) -> None:
        """Our name changed: announce it, at once or (within a second of the last
        announcement) a second after it; the announcement says what ``ours()`` says
        then, so of several changes in that second the last one is sent."""
        if not self.started or self.closed or not self._announce or self._deferred is not None:
            return
        wait = 0.0 if self._last_sent is None else \
            self._last_sent + MIN_ANNOUNCE_GAP_S - self._reactor.time()
        if wait <= 0:
            self._send()
        else:
            self._deferred = self._reactor.call_later(wait, self._send_deferred)

    def _send_deferred(self) -> None:
        self._deferred = None
        self._send()

    def _send(self) -> None:
        """Announce what ``ours()`` says now, and count the next interval from here."""
        if self._periodic is not None:
            self._periodic.cancel()
        interval = ANNOUNCE_EVERY_S + self._rng.uniform(-ANNOUNCE_JITTER_S, ANNOUNCE_JITTER_S)
        self._periodic = self._reactor.call_later(interval, self._send)
        mine = self._ours()
        if mine is None or self._endpoint is None:
            return                      # no identity (yet): nothing to claim
        self._last_sent = self._reactor.time()
        self._endpoint.send(announcement(mine.fingerprint, mine.node_id, mine.port,
                                         mine.version, mine.name))
        self.announced += 1

    # -- hearing ----------------------------------------------------------------------

    def _on_datagram(self, data: bytes, host: str, port: int) -> None:
        if not self._listen or self.closed:
            return
        claim = maybe_parse(data)
        if claim is None:
            self._refused()
            return
        mine = self._ours()
        if mine is not None and claim.fingerprint == mine.fingerprint \
                and claim.node_id == mine.node_id:
            self.own += 1
            return
        self.valid += 1
        self._keep(claim, host)

    def _on_oversized(self, host: str, port: int) -> None:
        if self._listen and not self.closed:
            self._refused()

    def _keep(self, claim: Announcement, host: str) -> None:
        now = self._reactor.time()
        key = (claim.fingerprint, claim.node_id, host, claim.port)
        table = self._table
        old = table.pop(key, None)
        new = old is None or now - old.last_heard >= FORGET_AFTER_S
        if old is None and len(table) >= MAX_HEARD:
            oldest = next(iter(table))
            del table[oldest]
            self._untold.discard(oldest)
        entry = Heard(claim.fingerprint, claim.node_id, claim.name, host, claim.port,
                      claim.version, now if new else old.first_heard, now)
        table[key] = entry
        if new:
            self._untold.add(key)
        self._arm_purge(now)
        if self._may_call(now):
            new = key in self._untold
            self._untold.discard(key)
            self._on_heard(entry, new)

    def _may_call(self, now: float) -> bool:
        calls = self._calls
        if len(calls) == MAX_HEARD_CALLS_PER_S and now - calls[0] < 1.0:
            return False
        calls.append(now)
        return True

    # -- forgetting -------------------------------------------------------------------

    def nearby(self, now: float | None = None) -> list[Heard]:
        """What was heard within ``FORGET_AFTER_S`` of ``now`` (the reactor's time unless
        given), newest first."""
        self._purge(self._reactor.time() if now is None else now)
        return list(reversed(self._table.values()))

    def _purge(self, now: float) -> None:
        table = self._table
        while table:
            key = next(iter(table))
            if now - table[key].last_heard < FORGET_AFTER_S:
                return
            del table[key]
            self._untold.discard(key)

    def _arm_purge(self, now: float) -> None:
        if self._purge_timer is None and self._table and not self.closed:
            oldest = next(iter(self._table.values()))
            self._purge_timer = self._reactor.call_later(
                max(0.0, oldest.last_heard + FORGET_AFTER_S - now), self._purge_due)

    def _purge_due(self) -> None:
        self._purge_timer = None
        now = self._reactor.time()
        self._purge(now)
        self._arm_purge(now)

    # -- junk -------------------------------------------------------------------------

    def _refused(self) -> None:
        self.junk += 1
        self._junk_pending += 1
        if self._junk_timer is not None:
            return                      # a notice is due: this one joins it
        now = self._reactor.time()
        if self._junk_told_at is None or now - self._junk_told_at >= JUNK_NOTICE_EVERY_S:
            self._tell_junk(now)
        else:
            self._junk_timer = self._reactor.call_later(
                self._junk_told_at + JUNK_NOTICE_EVERY_S - now, self._junk_due)

    def _junk_due(self) -> None:
        self._junk_timer = None
        if self._junk_pending:
            self._tell_junk(self._reactor.time())

    def _tell_junk(self, now: float) -> None:
        count, self._junk_pending = self._junk_pending, 0
        self._junk_told_at = now
        self._on_junk(count)

    # -- the end ----------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for timer in (self._periodic, self._deferred, self._purge_timer, self._junk_timer):
            if timer is not None:
                timer.cancel()
        self._periodic = self._deferred = self._purge_timer = self._junk_timer = None
        if self._endpoint is not None:
            self._endpoint.close()

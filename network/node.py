"""The node: our side of the chat network.

It owns the listening socket and offers the verbs the commands use (connect,
cancel_connect, terminate, send, send_to_all, set_name, trust, shutdown). It
never prints: outcomes go to an *observer* (:class:`Observer`; the console
implements it) as Enums and numbers, and a verb that says no raises
:class:`~network.outcomes.Refused`.

The node is a facade over objects that each own their state:

* :class:`~network.registry.Registry`: where each connection is (pending,
  live, lingering), the node's :class:`~network.registry.Entry` for it, and
  the ids;
* :class:`~network.dialer.Dialer`: our one connect in flight, and the
  incoming hellos that wait for it;
* :class:`~network.admission.Admission`: who may connect, and the throttled
  refusal notices;
* :class:`~network.fanout.Fanout`: ``send all`` without waiting for the slowest;
* the pure rules :func:`network.duplicates.which_stays` (two connections to
  one peer) and :func:`network.identities.judge` (trust).

The protocol decides what a connection *is* (:mod:`network.peer_protocol`);
the node decides what to do about it: which id it gets, whether a hello is
welcome (not ourselves, not a duplicate, trusted enough, room in the table),
and which of two connections to the same peer survives. It talks to a
connection only through the connection's verbs.

**Events are handled one at a time.** What a connection reports (and what a
verb the node called on a connection makes it report) is queued and handled
in order after the event in hand (or the verb of ours that caused it), never
inside it. A ``done`` callback given to a verb
is always called later (:meth:`later`), never from inside the verb.

**Simultaneous connects.** When A connects to B while B connects to A, each
side ends up holding two connections to the same node; both keep the same
one (:mod:`network.duplicates`) and the other is retired quietly. While our
own connect is unresolved, an incoming hello announcing the port we are
connecting to is answered but not yet shown, so the user sees one
``connected to peer N`` under the id the ``connect`` reserved, never a
connection that then closes.
"""

from __future__ import annotations

import collections
import contextlib
import errno as errnos
import ipaddress
import os
import socket
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable

from reactor.listener import Listener, open_listening_sockets
from reactor.loop import Reactor
from reactor.netutil import (AddressError, host_of, is_local_address, is_loopback,
                             local_addresses, maybe_numeric_host, my_ipv4, my_ipv6)
from reactor.transport import StreamTransport

from . import wire
from .admission import Admission
from .connection import Connection
from .delivery import Delivery
from .dialer import Attempt, Dialer
from .discovery import Announcement, Discovery, Heard
from .duplicates import Keep, which_stays
from .fanout import Fanout
from .identities import TlsEnding, judge, maybe_tls_ending, tls_words
from .names import BadName, check_name
from .observer import Observer
from .outcomes import (AddressProblem, CloseReason, ConnectFailed, Declined, Direction, Failure,
                       Lost, Nearby, PeerInfo, Posted, Refusal, Refused, TrustError,
                       TrustProblem, Undelivered, join_host_port)
from .peer_protocol import PeerProtocol, State, Timing
from .protocol_events import (BadHello, BecamePlain, CloseNow, Goodbye, Got, HandshakeTimedOut,
                              HelloReceived, LineDiscarded, Messages, NameChanged, Numbering,
                              PeerRefused, PeerSilent, StartTLS)
from .reconnect import Reconnector
from .store import History, Store
from .registry import Entry, Registry

if TYPE_CHECKING:
    from .identity import Identity
    from .trust import TrustedPeer, TrustStore

STALL_CHECK_S = 1.0         # how often a peer that reads nothing is looked for (at most)
ACK_SHARE_OF_FLUSH = 0.8    # exit waits this part of --flush-timeout for acknowledgements


@dataclass
class NodeOptions:
    connect_timeout_s: float = 5.0
    heartbeat_s: float = 15.0
    send_timeout_s: float = 30.0
    flush_timeout_s: float = 2.0    # exit and terminate wait this long for what is queued
    max_peers: int = 100
    max_per_address: int = 10
    trusted_only: bool = False      # refuse every connection that is not a trusted identity
    name: str | None = None        # announced to chat.py peers (already checked)
    delivery: bool = True           # number our messages and acknowledge theirs (chat.py peers)
    reconnect: bool = True          # dial trusted peers by ourselves (on start, after a drop)
    resolver_argv: list | None = None   # the name lookup's helper command (tests replace it)
    announce: bool = True           # tell the local network we are here (with an identity)
    discover: bool = True           # listen for the others' announcements
    timing: Timing = field(default_factory=Timing)


@dataclass(frozen=True)
class _Ended:
    """A connection is gone (queued like the protocol's events)."""
    exc: BaseException | None
    unsent: int


class Node:
    def __init__(self, reactor: Reactor, observer: Observer,
                 options: NodeOptions | None = None, node_id: str | None = None,
                 identity: "Identity | None" = None, trust: "TrustStore | None" = None,
                 delivery: Delivery | None = None, endpoint_factory=None) -> None:
        """``identity`` makes connections to other chat.py peers with identities
        encrypted; ``trust`` names them; ``delivery`` keeps the conversations (in
        memory only, if not given); ``endpoint_factory`` opens the UDP endpoint of LAN
        discovery (:func:`network.discovery.lan_endpoint_factory`; none: no discovery)."""
        self._reactor = reactor
        self._observer = observer
        self.options = options or NodeOptions()
        self.identity = identity
        self.trust = trust
        self._contexts = None           # TLS contexts per peer certificate, made when needed
        self.node_id = node_id or os.urandom(wire.NODE_ID_CHARS // 2).hex()
        self._heartbeat_ms = min(max(round(self.options.heartbeat_s * 1000),
                                     wire.MIN_HEARTBEAT_MS), wire.MAX_HEARTBEAT_MS)
        self.name = self.options.name
        self._hello_said: wire.Hello | None = None
        self._registry = Registry()
        self._dialer = Dialer(reactor, self.options.connect_timeout_s, self._tcp_connected,
                              self._tcp_failed, self._resolved, self.options.resolver_argv)
        self._fanout = Fanout(reactor, self._registry.live_entries, self.later,
                              self._send_numbered, self._record_to_all)
        self._admission = Admission(self.options.max_peers, self.options.max_per_address,
                                    reactor.call_later, observer.incoming_refused)
        self._listeners: list[Listener] = []
        self._local_addresses: set[str] = set()
        self._stall_timer = None
        self._reading = True
        self._inbox: collections.deque = collections.deque()   # (conn, event) to handle
        self._handling = False
        self._later: collections.deque = collections.deque()   # (callback, args) to call
        self._later_scheduled = False
        self._calling_later = False
        self._shutdown_done: Callable[[int], None] | None = None
        self._shutdown_timer = None
        self._ack_timer = None          # exit waits this long for acknowledgements
        self._left = False              # exit said goodbye (after the acknowledgements)
        self._lost_at_exit: list[Undelivered] = []
        self._lost_before_exit = 0      # messages given up on while running (said then)
        self.shutting_down = False
        self.delivery = delivery or Delivery(Store(None, observer.store_problem),
                                             History(None, 1000, observer.store_problem),
                                             self.later, observer.delivered)
        self._reconnector = Reconnector(reactor, self._redial, observer.reconnecting)
        self._endpoint_factory = endpoint_factory
        self._discovery: Discovery | None = None
        self._ack_waits_for_output = False
        self._shown: dict = {}          # conn -> (conversation, stream, number) on stdout soon
        reactor.add_before_flush(self._store_then_send)
        reactor.add_after_turn(self._turn_ended)

    # -- listening ------------------------------------------------------------------------

    def listen(self, host: str | None, port: int) -> None:
        """Bind and start accepting; raises ``OSError`` (EADDRINUSE, EACCES ...).

        ``host`` ``None``: every address, IPv4 and IPv6 (see
        :func:`~reactor.listener.open_listening_sockets`)."""
        self._listeners = [Listener(self._reactor, sock, self._accepted, self._starved)
                           for sock in open_listening_sockets(host, port)]
        self._local_addresses = local_addresses()
        # A peer that listens on loopback only cannot be reached from the network: it
        # has nothing to announce there (it still hears the others).
        announce = self.options.announce and not all(
            is_loopback(listener.host) for listener in self._listeners)
        if self._endpoint_factory is not None and (announce or self.options.discover):
            self._discovery = Discovery(self._reactor, self._endpoint_factory,
                                        self._announcement, self._heard,
                                        self._observer.discovery_junk,
                                        announce=announce, listen=self.options.discover)
            self._discovery.start()       # its sockets are ours from the start, like the listener
        self._stall_timer = self._reactor.call_later(self._stall_check_s(), self._check_stalls)
        self._reconnector.enabled = self.options.reconnect and self.identity is not None
        for peer in self.trusted():
            conv = self.delivery.known(peer.fingerprint)
            if conv is not None:
                self.delivery.named(conv, peer.name)
        self._reactor.call_soon(self._plan_reconnects)   # after "listening on"

    # -- the local network --------------------------------------------------------------

    def _announcement(self) -> Announcement | None:
        if self.identity is None or not self._listeners:
            return None
        return Announcement(self.identity.fingerprint, self.node_id, self.port, wire.VERSION,
                            self.name)

    def _heard(self, heard: Heard, new: bool) -> None:
        """An announcement (a claim): a newcomer hears us back soon, and a trusted
        identity that is not connected is dialled there, for that identity only."""
        if self.shutting_down:
            return
        if new and self._discovery is not None:
            self._discovery.announce_now()
        trusted = self.trust.lookup_by_id(heard.fingerprint) if self.trust else None
        if trusted is not None and not any(entry.conn.fingerprint == heard.fingerprint
                                           for entry in self._registry.live_entries()):
            self._reconnector.seen_at(trusted.fingerprint, trusted.name, (heard.host, heard.port))

    def nearby(self) -> list[Nearby]:
        """What was heard on the local network lately, newest first."""
        if self._discovery is None:
            return []
        now = self._reactor.time()
        result = []
        for heard in self._discovery.nearby(now):
            trusted = self.trust.lookup_by_id(heard.fingerprint) if self.trust else None
            result.append(Nearby(heard.name, heard.fingerprint, heard.host, heard.port,
                                 now - heard.last_heard, trusted.name if trusted else None))
        return result

    def _heard_from(self, fingerprint: bytes) -> Nearby | None:
        """The newest announcement that claims ``fingerprint``, if any was heard lately."""
        return next((n for n in self.nearby() if n.fingerprint == fingerprint), None)

    def _plan_reconnects(self) -> None:
        for peer in self.trusted():
            if not self.shutting_down:
                self._reconnector.want(peer.fingerprint, peer.name, peer.address)

    def _stall_check_s(self) -> float:
        return min(STALL_CHECK_S, self.options.send_timeout_s / 2)

    @property
    def port(self) -> int:
        return self._listeners[0].port if self._listeners else 0

    @property
    def listening_host(self) -> str:
        """Where we listen: an address, or ``::`` (every one) or ``0.0.0.0`` (every IPv4)."""
        return self._listeners[0].host if self._listeners else ""

    def my_ip(self) -> str:
        return my_ipv4()

    def my_ipv6(self) -> str | None:
        return my_ipv6()

    def _hello(self) -> wire.Hello:
        """Ours, as a new connection says it: one object shared while nothing changes."""
        hello = self._hello_said
        if hello is None or (hello.port, hello.name) != (self.port, self.name):
            hello = self._hello_said = wire.Hello(self.port, self.node_id, self._heartbeat_ms,
                                                  self.name, delivery=self.options.delivery)
        return hello

    def _new_connection(self, direction: Direction, ip: str) -> Connection:
        protocol = PeerProtocol(direction, self._hello(), self._reactor.time(),
                                self.options.timing,
                                cert_der=self.identity.cert_der if self.identity else None)
        return Connection(self._reactor, self, protocol, direction, ip)

    def _room(self, ip: str | None) -> tuple[Refusal | None, int]:
        """Room for one more connection? Evicts a long-silent plain client if that makes it."""
        def plain_idle():
            # Looked at only when the table is full: listing every entry for each
            # accept would make accepting n clients cost n * n.
            for entry in self._registry.live_entries():
                if not entry.conn.protocol.speaks_protocol:
                    yield entry.conn.protocol.last_received, entry
        refusal, limit, evict = self._admission.check(
            ip, self._registry.open_count, plain_idle(), self._reactor.time())
        if evict is not None:
            self._drop(evict, CloseReason.EVICTED,
                       silent_s=self._reactor.time() - evict.conn.protocol.last_received)
        return refusal, limit

    def _accepted(self, sock: socket.socket, addr: tuple) -> None:
        if self.shutting_down:
            sock.close()
            return
        ip = host_of(addr)
        refusal, limit = self._room(ip)
        if refusal is None:
            conn = self._new_connection(Direction.INCOMING, ip)
            self._registry.add(conn, counted=True)
            self._admission.arrived(ip)
        else:
            self._admission.refused(join_host_port(ip, addr[1]), refusal, limit)
            if not self._admission.farewell_begins():
                sock.close()
                return
            protocol = PeerProtocol.refusing(refusal, limit, self._hello(),
                                             self._reactor.time(), self.options.timing)
            conn = Connection(self._reactor, self, protocol, Direction.INCOMING, ip)
            self._registry.add(conn, farewell=True)
        self._attach(conn, sock)

    def _attach(self, conn: Connection, sock: socket.socket) -> None:
        try:
            StreamTransport(self._reactor, sock, conn)
        except OSError as exc:       # reset before we could even look at it
            sock.close()
            conn.connection_lost(exc)

    def _starved(self, exc: OSError, retry_s: float) -> None:
        self._observer.accept_paused(exc.errno, retry_s)

    # -- the verbs the commands use -------------------------------------------------------

    def peers(self) -> list[PeerInfo]:
        return list(self._registry.peers())

    def peer(self, peer_id: int) -> PeerInfo | None:
        entry = self._registry.live(peer_id)
        return entry.info if entry is not None else None

    def peer_at(self, host: str, port: int) -> PeerInfo | None:
        """The connection to the peer listening at ``host:port`` (as ``list`` shows it)."""
        try:
            ip = maybe_numeric_host(host)
        except AddressError:
            return None
        return self._registry.find_address(ip, port) if ip is not None else None

    def connect(self, host: str, port: int, done: Callable[[bool], None]
                ) -> tuple[str, int]:
        """Start connecting; ``done(ok)`` once it settled. Returns ``(address, reserved
        id)``; the address is the host name as typed when it must be looked up first
        (off the loop; the checks that need the address are made on what it resolves to).

        Raises :class:`Refused` when nothing can be tried (a bad address,
        ourselves, already connected, full, another connect in flight).
        """
        return self._dial_user(host, port, done)

    def _dial_user(self, host: str, port: int, done: Callable[[bool], None],
                   expect: bytes | None = None) -> tuple[str, int]:
        try:
            ip = maybe_numeric_host(host)
        except AddressError as exc:
            raise Refused(Declined.ADDRESS, address=address_problem(exc)) from None
        refused = None
        if ip is not None:
            refused = self._cannot_dial(ip, port)
            if refused is not None and refused.reason is not Declined.DUPLICATE:
                raise refused
        if self._dialer.attempt is not None and self._dialer.attempt.auto:
            self._cancel_attempt()           # a reconnect of ours gives way to our user
        if self._dialer.attempt is not None:
            raise Refused(Declined.CONNECTING)
        if refused is not None:
            raise refused
        refusal, limit = self._room(None)
        if refusal is not None:             # no address limit applies to our own: FULL
            raise Refused(Declined.FULL, limit=limit)
        peer_id = self._registry.id_for_connect()
        try:
            self._dialer.dial(host if ip is None else ip, ip, port, peer_id, done,
                              expect=expect)
        except OSError as exc:   # no socket to be had: EMFILE, ENOBUFS ...
            self._registry.id_unused(peer_id)
            raise Refused(Declined.NO_SOCKET, errno=exc.errno) from None
        return (host.lower() if ip is None else ip), peer_id

    def _cannot_dial(self, ip: str, port: int) -> Refused | None:
        """Why ``ip:port`` is not worth dialling (ourselves, a peer we have), if it is not."""
        bare = ip.partition("%")[0]
        if bare in ("0.0.0.0", "::") or (":" not in bare and bare.endswith(".255")) \
                or ipaddress.ip_address(bare).is_multicast:
            return Refused(Declined.ADDRESS, address=AddressProblem.UNUSABLE)
        if port == self.port and is_local_address(ip, self._local_addresses):
            return Refused(Declined.SELF)
        existing = self._registry.find_address(ip, port)
        if existing is not None and existing.direction is Direction.OUTGOING:
            # Only an address we dialled ourselves is a fact; an incoming peer's port is
            # its claim, which the hello settles (so no stranger can squat an address).
            return Refused(Declined.DUPLICATE, peer_id=existing.id)
        return None

    def _resolved(self, attempt: Attempt, ips: list[str]) -> list[str] | None:
        """The name of our connect has these addresses: those worth dialling, in order;
        ``None`` when none is (the attempt is settled here)."""
        usable, refused = [], []
        for ip in ips:
            why = self._cannot_dial(ip, attempt.port)
            (usable if why is None else refused).append(ip if why is None else why)
        if usable:
            return usable
        with self._one_at_a_time():
            first = refused[0] if refused else Refused(Declined.ADDRESS,
                                                       address=AddressProblem.UNUSABLE)
            if first.reason is Declined.DUPLICATE:
                self._observer.already_connected(self.peer(first.peer_id))
                self._settle(attempt, None)
            elif first.reason is Declined.SELF:
                self._settle(attempt, ConnectFailed(Failure.REFUSED_BY_US,
                                                    refusal=Refusal.SELF))
            else:
                self._settle(attempt, ConnectFailed(Failure.ADDRESS))
        return None

    def connect_to(self, who: str, done: Callable[[bool], None]) -> tuple[str, int, int]:
        """Connect to an identity by our user's name for it, its announced name (someone
        nearby), or its full ID: at the address it was last heard announcing from, else
        where it was last seen. What answers must prove that identity (TLS), or it is
        refused with the changed-identity warning. Returns ``(address, reserved id, port)``
        (as :meth:`connect`, and the port it found).
        """
        fingerprint, label = self._identity_named(who)
        for entry in self._registry.live_entries():
            if entry.conn.fingerprint == fingerprint:
                raise Refused(Declined.DUPLICATE, peer_id=entry.info.id)
        heard = self._heard_from(fingerprint)
        trusted = self.trust.lookup_by_id(fingerprint) if self.trust is not None else None
        if heard is not None:
            host, port = heard.host, heard.port
        elif trusted is not None and trusted.address is not None:
            host, port = trusted.address
        else:
            raise Refused(Declined.NO_ADDRESS, detail=label)
        ip, peer_id = self._dial_user(host, port, done, expect=fingerprint)
        return ip, peer_id, port

    def _identity_named(self, who: str) -> tuple[bytes, str]:
        """``(fingerprint, a label for it)`` of a trusted name, a full ID, or the name of
        one identity nearby; :class:`Refused` (``UNKNOWN_PEER``) otherwise."""
        from .identity import InvalidId, parse_id
        trusted = self.trust.lookup_by_name(who) if self.trust is not None else None
        if trusted is not None:
            return trusted.fingerprint, trusted.name
        try:
            fingerprint = parse_id(who)
        except InvalidId:
            fingerprint = None
        if fingerprint is not None:
            return fingerprint, self.short_id(fingerprint)
        wanted = who.casefold()
        found = {n.fingerprint for n in self.nearby() if n.name and n.name.casefold() == wanted}
        if len(found) == 1:
            return found.pop(), who
        raise Refused(Declined.UNKNOWN_PEER, detail=who, limit=len(found))

    def trust_id(self, text: str, name: str) -> "TrustedPeer":
        """Trust the identity with the full ID ``text`` (read out by its owner, say) as
        ``name``, before it ever connected; raises :class:`TrustError` (``BAD_ID``: not
        an ID, a check character catches a typo)."""
        from .identity import InvalidId, parse_id
        if self.trust is None:
            raise TrustError(TrustProblem.NO_IDENTITY)
        try:
            fingerprint = parse_id(text)
        except InvalidId:
            raise TrustError(TrustProblem.BAD_ID, text) from None
        heard = self._heard_from(fingerprint)
        entry = self.trust.trust(fingerprint, name, None)
        self._rename_trusted(fingerprint, entry.name)
        if heard is not None and not self.shutting_down:
            self._reconnector.seen_at(fingerprint, entry.name, (heard.host, heard.port))
        return entry

    def cancel_connect(self) -> tuple[str, int] | None:
        """Give up our user's connect in flight (Ctrl-C at a terminal); ``None`` if there
        is none (a reconnect of ours is not one)."""
        attempt = self._dialer.attempt
        if attempt is None or attempt.auto:
            return None
        return self._cancel_attempt()

    def _cancel_attempt(self) -> tuple[str, int] | None:
        attempt = self._dialer.cancel()
        if attempt is None:
            return None
        with self._one_at_a_time():
            if attempt.entry is not None:
                self._registry.linger(attempt.entry, quiet=True)
                attempt.entry.conn.abort()
            self._settle(attempt, ConnectFailed(Failure.CANCELLED))
        return attempt.host, attempt.port

    def terminate(self, peer_id: int) -> PeerInfo:
        """Close one connection: what is buffered gets ``flush_timeout_s`` to leave."""
        self._fanout.flush()
        entry = self._registry.live(peer_id)
        info = entry.info
        if info.fingerprint is not None:
            self._reconnector.stop(info.fingerprint)
        entry.closing(CloseReason.TERMINATED)
        self._registry.linger(entry)
        if not self._unacknowledged_on(entry):
            entry.conn.close()
        # else: it closes once it acknowledged what it has of ours (see Got), or then.
        self._reactor.call_later(self.options.flush_timeout_s, entry.conn.abort)
        return info

    def send(self, peer_id: int, text: str, done: Callable[[Posted], None]) -> None:
        """Queue one message; ``done(WRITTEN)`` (later) once it is in the connection's buffer.

        Above the buffer's high-water mark it waits (and so does a caller
        that waits for ``done``). If the connection ends first: ``done(QUEUED)``
        for a delivery peer with an identity (the outbox resends it), else
        ``done(LOST)``. A delivery peer acknowledges it later
        (:mod:`network.delivery`); ``history`` shows that.
        """
        self._fanout.flush()
        entry = self._registry.live(peer_id)
        if entry.conversation is not None:
            self.delivery.send(entry.conversation, text, done)
            return
        info = entry.info
        self.delivery.history.outgoing(info.fingerprint, info.trusted_name or info.name,
                                       info.address, text, "sent")
        entry.conn.send(text, lambda ok: done(Posted.WRITTEN if ok else Posted.LOST))

    def send_to_trusted(self, name: str, text: str, done: Callable[[Posted], None]
                        ) -> Posted | None:
        """A message for the identity our user trusts as ``name``, connected or not.

        Connected (as a delivery peer): as :meth:`send`, returns ``None``. Not
        connected: the message waits in the outbox (on disk) and is sent once it
        is; returns ``QUEUED`` and ``done`` is never called. Raises
        :class:`TrustError` for a name nobody has.
        """
        peer = self.trust.lookup_by_name(name) if self.trust is not None else None
        if peer is None:
            raise TrustError(TrustProblem.UNKNOWN_NAME, name)
        self._fanout.flush()
        for entry in self._registry.live_entries():
            if entry.conn.fingerprint == peer.fingerprint and entry.conversation is None:
                self.send(entry.info.id, text, done)     # an older chat.py: no outbox
                return None
        conv = self.delivery.conversation(peer.fingerprint)
        self.delivery.named(conv, peer.name)
        return self.delivery.send(conv, text, done)

    def trusted_named(self, name: str) -> "TrustedPeer | None":
        return self.trust.lookup_by_name(name) if self.trust is not None else None

    def history(self, count: int, fingerprint: bytes | None = None, name: str | None = None,
                address: str | None = None) -> list:
        """The last ``count`` messages (``network.store.Record``), oldest first: all, or
        those with one identity, one announced name, or one address."""
        if fingerprint is not None:
            match = lambda r: r.fingerprint == fingerprint                  # noqa: E731
        elif name is not None:
            wanted = name.casefold()
            match = lambda r: (r.name or "").casefold() == wanted            # noqa: E731
        elif address is not None:
            match = lambda r: r.address == address                          # noqa: E731
        else:
            match = None
        return self.delivery.history.last(count, match)

    def send_to_all(self, text: str, done: Callable[[int, list], None]) -> None:
        """One message to every open connection; ``done(count, missed)`` once all have it.

        Nobody waits for a slow connection; see :class:`~network.fanout.Fanout`.
        """
        self._fanout.add(text, done)

    def set_name(self, name: str | None) -> int:
        """Call ourselves ``name`` from now on (``None``: no name); returns the chat.py peers told.

        Raises :class:`Refused` (``BAD_NAME``) for a name that breaks the rule.
        """
        if name is not None:
            try:
                name = check_name(name)
            except BadName as exc:
                raise Refused(Declined.BAD_NAME, problem=exc.problem, detail=exc.char) from None
        self._fanout.flush()
        self.name = name
        if self._discovery is not None:
            self._discovery.announce_now()
        for entry in [*self._registry.live_entries(), *self._registry.pending_entries()]:
            entry.conn.rename(name)
        return sum(1 for entry in self._registry.live_entries()
                   if entry.conn.protocol.speaks_protocol)

    def pause_reading(self) -> None:
        """Stop reading from every peer (our output is congested): TCP pushes back on them."""
        self._set_reading(False)

    def resume_reading(self) -> None:
        self._set_reading(True)

    def _set_reading(self, reading: bool) -> None:
        """Established connections only: one still in its handshake reads on (a hello is
        one short line, and not reading it would make a chat.py peer look like a silent
        plain client); it is paused once established."""
        if reading != self._reading:
            self._reading = reading
            for entry in self._registry.live_entries():
                entry.conn.set_reading(reading)

    def shutdown(self, done: Callable[[int], None]) -> int:
        """Wait for delivery peers' acknowledgements, say goodbye to everyone, flush (all
        in at most ``flush_timeout_s``), then ``done(undelivered)``: how many messages of
        ours were not acknowledged (each recipient reported to the observer), counting
        those given up on earlier in the run (reported then).

        Returns how many connections are being closed.
        """
        with self._one_at_a_time():
            return self._shut_down(done)

    def _shut_down(self, done: Callable[[], None]) -> int:
        self._fanout.flush()
        self.shutting_down = True
        self._shutdown_done = done
        for listener in self._listeners:
            listener.close()
        if self._dialer.attempt is not None:
            self._cancel_attempt()
        if self._stall_timer is not None:
            self._stall_timer.cancel()
        self._admission.close()
        self._reconnector.close()
        if self._discovery is not None:
            self._discovery.close()
        for entry in self._registry.pending_entries():
            entry.conn.abort()
        live = self._registry.live_entries()
        for entry in live:
            entry.closing(CloseReason.EXITING)
        # Delivery peers first acknowledge what they have not (a share of the flush
        # timeout), then everyone is told goodbye and gets the rest to take it.
        if self._unacknowledged():
            self._ack_timer = self._reactor.call_later(
                self.options.flush_timeout_s * ACK_SHARE_OF_FLUSH, self._leave_all)
        else:
            self._leave_all()
        self._shutdown_timer = self._reactor.call_later(self.options.flush_timeout_s,
                                                         self._abort_all)
        self._maybe_shutdown_done()
        return len(live)

    def _unacknowledged(self) -> bool:
        """A connected delivery peer has messages of ours it has not acknowledged."""
        return any(self._unacknowledged_on(entry) for entry in self._registry.live_entries())

    @staticmethod
    def _unacknowledged_on(entry: Entry) -> bool:
        conv = entry.conversation
        return conv is not None and bool(conv.outbox) and conv.carrier is entry.conn

    def _maybe_leave(self) -> None:
        if not self._left and not self._unacknowledged():
            self._leave_all()

    def _leave_all(self) -> None:
        if self._left:
            return
        self._left = True
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        for entry in self._registry.live_entries():
            entry.conn.leave()

    def _abort_all(self) -> None:
        self._shutdown_timer = None
        for entry in self._registry.everyone():
            entry.conn.abort()
        self._maybe_shutdown_done(force=True)

    def _maybe_shutdown_done(self, force: bool = False) -> None:
        if self._shutdown_done is None or (self._registry.busy and not force):
            return
        done, self._shutdown_done = self._shutdown_done, None
        if self._shutdown_timer is not None:
            self._shutdown_timer.cancel()
        if self._ack_timer is not None:
            self._ack_timer.cancel()
        report = self._lost_at_exit + [Undelivered(conv.recipient(), len(conv.outbox), True)
                                       for conv in self.delivery.waiting()]
        for undelivered in report:
            self._observer.undelivered(undelivered)
        self.later(done, self._lost_before_exit
                   + sum(undelivered.count for undelivered in report))

    # -- reconnecting, and the end of each turn ---------------------------------------------

    def _redial(self, fingerprint: bytes, address: tuple[str, int],
                done: Callable[[bool], None]) -> bool:
        """The reconnector's dial: False if the node is busy dialling (ask again soon)."""
        if self.shutting_down:
            return True
        if self._dialer.attempt is not None:
            return False
        if any(entry.conn.fingerprint == fingerprint for entry in self._registry.live_entries()):
            self._reconnector.connected(fingerprint)
            return True
        ip, port = address
        refusal, _ = self._room(None)
        if refusal is not None or (port == self.port
                                   and is_local_address(ip, self._local_addresses)):
            self.later(done, False)
            return True
        try:
            self._dialer.dial(ip, ip, port, 0, done, auto=True, expect=fingerprint)
        except OSError:
            self.later(done, False)
        return True

    def _send_numbered(self, entry: Entry, text: str, done: Callable[[Posted], None]) -> None:
        self.delivery.send(entry.conversation, text, done)

    def _record_to_all(self, text: str) -> None:
        self.delivery.history.outgoing(None, None, "all", text, "sent")

    def _store_then_send(self) -> None:
        """Before the turn's bytes leave: what we number is stored, then written."""
        self.delivery.save()
        self.delivery.release()

    def _turn_ended(self) -> None:
        """What arrived this turn: shown, then acknowledged once stdout has taken it
        (behind a reader that lags the acknowledgement waits, so a message killed with
        us in our output buffer is sent again, not lost), and what was sent after the
        flush began, stored then written. The history's log comes last: nothing on
        the screen or the wire waits for it."""
        self._store_then_send()
        self._observer.flush()
        if self.delivery.owes_acks:
            # Several turns may flush before stdout drains: one wait covers them all.
            self._shown.update(self.delivery.take_shown())
            if not self._ack_waits_for_output:
                self._ack_waits_for_output = True
                self._observer.after_shown(self._acknowledge_shown)
        self.delivery.history.save()

    def _acknowledge_shown(self) -> None:
        self._ack_waits_for_output = False
        shown, self._shown = self._shown, {}
        self.delivery.acknowledge(shown)
        # Stored at once: a kill between stdout taking a line and this commit shows
        # that line again after the restart (never loses it); keep that instant short.
        self.delivery.save()

    # -- identities: the verbs ------------------------------------------------------------

    def my_id(self) -> str | None:
        """Our ID, written for people; ``None`` without an identity."""
        from .identity import format_id
        return format_id(self.identity.fingerprint) if self.identity else None

    def short_id(self, fingerprint: bytes) -> str:
        from .identity import short_id
        return short_id(fingerprint)

    def trusted(self) -> "list[TrustedPeer]":
        return self.trust.all() if self.trust is not None else []

    def trust_peer(self, peer_id: int, name: str | None) -> "TrustedPeer":
        """Trust the identity connection ``peer_id`` proved, under ``name``."""
        info = self.peer(peer_id)
        if info is None or info.fingerprint is None or self.trust is None:
            raise TrustError(TrustProblem.NO_IDENTITY)
        name = name or info.name          # the name it announces, if none is given
        if not name:
            raise TrustError(TrustProblem.BAD_NAME, "")
        entry = self.trust.trust(info.fingerprint, name,
                                 (info.host, info.port) if info.speaks_protocol else None)
        self._rename_trusted(info.fingerprint, entry.name)
        return entry

    def untrust(self, name: str) -> "TrustedPeer":
        if self.trust is None:
            raise TrustError(TrustProblem.UNKNOWN_NAME, name)
        entry = self.trust.untrust(name)
        self._rename_trusted(entry.fingerprint, None)
        return entry

    def _rename_trusted(self, fingerprint: bytes, name: str | None) -> None:
        for entry in self._registry.live_entries():
            if entry.conn.fingerprint == fingerprint:
                entry.trusted_as(name)
                self._registry.update(entry, replace(entry.info, trusted_name=name))
                if entry.conversation is not None and entry.conversation.persistent:
                    self.delivery.named(entry.conversation, name, entry.info)

    # -- later: every done callback -------------------------------------------------------

    def later(self, callback: Callable[..., None], *args) -> None:
        """Call ``callback(*args)`` soon, never from inside the caller.

        All of them run in order from one loop callback; one that leads to
        another (a command released by a ``done`` sends the next message) is
        called in the same round, so a script's commands do not wait a turn each.
        """
        self._later.append((callback, args))
        if not self._later_scheduled and not self._calling_later:
            self._later_scheduled = True
            self._reactor.call_soon(self._call_later)

    def _call_later(self) -> None:
        self._later_scheduled = False
        self._calling_later = True
        queue = self._later
        try:
            while queue:
                callback, args = queue.popleft()
                callback(*args)
        finally:
            self._calling_later = False
            if queue and not self._later_scheduled:     # one of them failed: the rest later
                self._later_scheduled = True
                self._reactor.call_soon(self._call_later)

    # -- what the connections report ------------------------------------------------------

    def connection_events(self, conn: Connection, events: list) -> None:
        """Events of ``conn``: queued behind those not yet handled, handled in order."""
        inbox = self._inbox
        for event in events:
            inbox.append((conn, event))
        if not self._handling:
            self._drain()

    def connection_ended(self, conn: Connection, exc: BaseException | None,
                         unsent: int) -> None:
        self.connection_events(conn, [_Ended(exc, unsent)])

    @contextlib.contextmanager
    def _one_at_a_time(self):
        """A verb that may make connections report (a cancelled connect decides the
        hellos that waited for it): what they report waits until the verb is done."""
        if self._handling:
            yield
            return
        self._handling = True
        try:
            yield
        finally:
            self._handling = False
        self._drain()

    def _drain(self) -> None:
        """Handle what is queued, oldest first. A handler that fails (a bug) costs its
        own connection, never another's, and the rest are handled all the same."""
        self._handling = True
        inbox = self._inbox
        try:
            while inbox:
                conn, event = inbox.popleft()
                try:
                    self._handle(conn, event)
                except Exception as exc:  # noqa: BLE001 - contain a bug to its connection
                    self._reactor.report_failure(f"the node, on {type(event).__name__}", exc)
                    if conn.transport is not None:
                        conn.abort()
        finally:
            self._handling = False

    def _handle(self, conn: Connection, event) -> None:
        kind = type(event)
        if kind is _Ended:
            self._ended(conn, event.exc, event.unsent)
            return
        entry = self._registry.maybe_entry(conn)
        if entry is None:
            return                       # gone already: an event behind a failed one
        if kind is Messages:
            info = entry.info
            if info is None:
                return
            texts = event.texts
            conv = entry.conversation
            if conv is not None:
                texts = self.delivery.received(conv, conn, event.seq, texts)
                if not texts:
                    return                   # shown before: a resend
                self.delivery.history.incoming(
                    info.fingerprint, info.trusted_name or info.name,
                    info.address, texts, conv.in_stream,
                    conv.in_upto - len(texts) + 1 if event.seq else 0)
            else:
                self.delivery.history.incoming(
                    info.fingerprint, info.trusted_name or info.name,
                    info.address, texts)
            self._observer.messages_received(info, texts)
        elif kind is Got:
            if entry.conversation is not None:
                self.delivery.got(entry.conversation, conn, event.stream, event.upto)
                if self.shutting_down:
                    self._maybe_leave()
                elif entry.close_reason is CloseReason.TERMINATED \
                        and not self._unacknowledged_on(entry) and not conn.transport.closed:
                    conn.close()            # terminated: it has acknowledged everything
        elif kind is Numbering:
            if entry.conversation is not None:
                self.delivery.numbering(entry.conversation, event.stream)
        elif kind is HelloReceived:
            self._decide_hello(entry, event.hello)
        elif kind is BecamePlain:
            if self.options.trusted_only:       # a plain client proves no identity
                self._refuse_untrusted(entry, Refusal.UNTRUSTED)
            else:
                self._establish(entry)
        elif kind is LineDiscarded:
            if entry.info is not None:
                self._observer.line_too_long(entry.info, event.nbytes, event.limit)
        elif kind is NameChanged:
            self._renamed(entry, event.name, event.bad)
        elif kind is Goodbye:
            if event.duplicate:
                entry.gives_way()        # its place goes to the other connection
            else:
                entry.said_goodbye()
        elif kind is PeerSilent:
            self._drop(entry, CloseReason.TIMED_OUT, silent_s=event.silent_s)
        elif kind is PeerRefused:
            self._peer_refused(entry, event.refusal)
        elif kind is BadHello:
            host, port = conn.transport.peername
            self._observer.bad_hello(join_host_port(host, port), event.refusal, event.fault)
            self._handshake_over(entry, ConnectFailed(Failure.HANDSHAKE, refusal=event.refusal,
                                                      fault=event.fault))
        elif kind is HandshakeTimedOut:
            self._handshake_over(entry, ConnectFailed(Failure.HANDSHAKE))
            conn.abort()
        elif kind is StartTLS:
            self._start_tls(entry, event)
        elif kind is CloseNow:
            conn.abort()

    # -- our connect ----------------------------------------------------------------------

    def _tcp_connected(self, attempt: Attempt, sock: socket.socket) -> None:
        conn = self._new_connection(Direction.OUTGOING, attempt.ip)
        entry = self._registry.add(conn, target=(attempt.ip, attempt.port),
                                   peer_id=attempt.peer_id)
        self._dialer.became(attempt, entry)
        self._attach(conn, sock)

    def _tcp_failed(self, attempt: Attempt, exc: OSError) -> None:
        if isinstance(exc, TimeoutError):
            failed = ConnectFailed(Failure.TIMED_OUT, timeout_s=self.options.connect_timeout_s)
        elif isinstance(exc, socket.gaierror):
            failed = ConnectFailed(Failure.LOOKUP, detail=str(exc.strerror or exc))
        else:
            failed = ConnectFailed(Failure.NETWORK, errno=exc.errno)
        self._settle(attempt, failed)

    def _settle(self, attempt: Attempt, failed: ConnectFailed | None) -> None:
        """Our connect is over: established (``None``) or failed (``failed``).

        Incoming hellos that waited for it are decided now.
        """
        waited = self._dialer.settle(attempt)
        if waited is None:
            return
        if attempt.peer_id and self._registry.live(attempt.peer_id) is None:
            self._registry.id_unused(attempt.peer_id)   # it never named a connection
        if failed is not None and failed.failure is not Failure.CANCELLED and not attempt.auto:
            self._observer.connect_failed(attempt.host, attempt.port, failed)
        self.later(attempt.done, failed is None)
        for entry in waited:
            if entry.deferred and not entry.conn.transport.closed:
                entry.defer(False)
                self._decide_hello(entry, entry.conn.protocol.theirs)

    def _settle_if_attempt(self, entry: Entry, failed: ConnectFailed | None) -> None:
        """If ``entry`` is our connect's connection, the connect is over."""
        attempt = self._dialer.attempt
        if self._dialer.is_attempt(entry):
            self._settle(attempt, failed)

    # -- hellos ---------------------------------------------------------------------------

    def _decide_hello(self, entry: Entry, hello: wire.Hello) -> None:
        conn = entry.conn
        attempt = self._dialer.attempt
        if not self._trusted_enough(entry, hello):
            return
        ours = self.identity.fingerprint if self.identity else None
        if hello.node_id == self.node_id and conn.fingerprint == ours:
            self._handshake_over(entry, ConnectFailed(Failure.REFUSED_BY_US,
                                                      refusal=Refusal.SELF), Refusal.SELF)
            return
        if (conn.direction is Direction.INCOMING and entry.info is None and attempt is not None
                and not attempt.resolved()
                and (attempt.entry is not None or attempt.port == hello.port)):
            # Maybe the peer we are connecting to, connecting to us: answer, decide once our
            # own connect knows who answered it. That is soon once TCP is up (the hello
            # wait at most); before that, only a hello announcing the very port we dial
            # waits, since a dead address can take the whole connect timeout.
            entry.defer()
            self._dialer.wait_for_it(entry)
            conn.defer()
            return
        other = self._other_connection(entry, hello.node_id)
        kept = self._registry.take_place((conn.fingerprint, hello.node_id)) \
            if other is None else None
        if kept is not None:
            # Its duplicate ended first (the other side told us it gave way): this one
            # takes its place, under the same id, unseen.
            self._accept(entry, hello, replace(kept, direction=conn.direction))
            if self._dialer.is_attempt(entry):
                self._observer.already_connected(entry.info)
                self._settle(attempt, None)
        elif other is None:
            self._accept(entry, hello)
        else:
            self._duplicate(entry, other, hello.node_id)

    def _duplicate(self, entry: Entry, other: Entry, node_id: str) -> None:
        """``entry`` said hello as a peer that ``other`` already is (or is about to be)."""
        attempt = self._dialer.attempt
        stays = which_stays(entry.conn.direction, other.conn.direction, entry.info is not None,
                            self.node_id, node_id)
        if stays is Keep.EXISTING and self._dialer.is_attempt(entry):
            # We dialled a peer we already have (by another address): keep that one.
            self._retire(entry)
            entry.stands_for(other.info)
            self._observer.already_connected(other.info)
            self._settle(attempt, None)
        elif stays is Keep.EXISTING:
            self._handshake_over(entry, ConnectFailed(Failure.HANDSHAKE), Refusal.DUPLICATE)
        else:
            # One connection each way between the same two nodes: both sides keep the same.
            self._keep(*((entry, other) if stays is Keep.NEW else (other, entry)))
            if attempt is not None and attempt.entry in (entry, other):
                self._settle(attempt, None)

    def _trusted_enough(self, entry: Entry, hello: wire.Hello) -> bool:
        """Trust rules (:func:`network.identities.judge`), carried out."""
        conn, trust = entry.conn, self.trust
        address = entry.target if entry.target is not None else (conn.remote_ip, hello.port)
        known = trust.lookup_by_address(address) if trust is not None else None
        trusted = trust.lookup_by_id(conn.fingerprint) if trust and conn.fingerprint else None
        attempt = self._dialer.attempt
        expected = attempt.expect if self._dialer.is_attempt(entry) else None
        verdict = judge(conn.fingerprint, known, trusted, self.options.trusted_only, expected)
        if expected is not None and verdict.refusal is Refusal.NOT_EXPECTED:
            known = trust.lookup_by_id(expected) if trust is not None else None
            if known is None:
                from .trust import TrustedPeer
                known = TrustedPeer(expected, self.short_id(expected))
        if verdict.warn_changed:
            from .identity import format_id
            self._observer.identity_changed(
                join_host_port(*address), known,
                format_id(conn.fingerprint) if conn.fingerprint else None)
        if verdict.refusal is not None:
            if verdict.refusal is Refusal.NOT_EXPECTED and attempt.auto:
                self._reconnector.drop(expected)     # once is enough: no warning per try
            self._refuse_untrusted(entry, verdict.refusal)
            return False
        entry.trusted_as(verdict.trusted_name)
        if verdict.remember_address:
            try:           # where it lives now: the changed-key check looks there
                trust.remember_address(trusted.fingerprint, address)
            except TrustError:
                pass       # only a hint: an unwritable trust file changes nothing else
        return True

    def _refuse_untrusted(self, entry: Entry, refusal: Refusal) -> None:
        conn = entry.conn
        if entry.target is None:
            self._observer.untrusted_refused(join_host_port(conn.remote_ip, conn.transport.peername[1]),
                                             refusal)
        self._handshake_over(entry, ConnectFailed(Failure.REFUSED_BY_US, refusal=refusal),
                             refusal, introduce=False)

    def _start_tls(self, entry: Entry, event: StartTLS) -> None:
        if self._contexts is None:
            from .tlscontext import PeerContexts
            self._contexts = PeerContexts(self.identity)
        try:
            context = self._contexts.get(event.cert_der, event.server_side)
        except Exception as exc:      # noqa: BLE001 - an unusable certificate from outside
            self._handshake_over(entry, ConnectFailed(Failure.TLS, detail=str(exc)[:200]))
            entry.conn.abort()
            return
        entry.conn.start_tls(context, event.cert_der, event.server_side,
                             self.options.timing.handshake_timeout_s)

    def _accept(self, entry: Entry, hello: wire.Hello, info: PeerInfo | None = None) -> None:
        """Welcome a chat.py peer: new, upgraded from plain, or taking over ``info``'s place."""
        entry.defer(False)
        conn = entry.conn
        if info is not None:                          # takes over an id already shown
            self._registry.establish(entry, info)
            if not self._reading:
                conn.set_reading(False)
        elif entry.info is not None:                  # a plain connection was chat.py
            info = replace(entry.info, speaks_protocol=True, node_id=hello.node_id,
                           port=entry.info.port if entry.target else hello.port,
                           fingerprint=conn.fingerprint, trusted_name=entry.trusted_name,
                           name=hello.name)
            self._registry.update(entry, info)
            self._observer.peer_upgraded(info)
            if hello.bad_name is not None:
                self._observer.bad_name(info, hello.bad_name)
        else:
            self._establish(entry)
        conn.accept()
        if conn.delivers and entry.info is not None:
            self._converse(entry)

    def _converse(self, entry: Entry) -> None:
        """A delivery peer: the conversation with its identity goes on over this connection."""
        conn = entry.conn
        conv = entry.conversation
        if conv is None:
            conv = self.delivery.conversation(conn.fingerprint)
            other = conv.carrier
            if other is not None and other is not conn and not other.transport.closed \
                    and other.protocol.theirs.node_id != conn.protocol.theirs.node_id:
                # Another process with that identity (one user's other terminal) carries
                # the conversation: this connection gets one of its own.
                conv = self.delivery.conversation(None)
            entry.converses(conv)
        self.delivery.named(conv, entry.info.trusted_name)
        self.delivery.attach(conv, conn, entry.info)
        # Its first GOT comes with its hello; a peer that never sends one would hold our
        # messages (and a script waiting for them) for as long as it stays.
        wait_s = self.options.timing.handshake_timeout_s
        self._reactor.call_later(wait_s, self._check_resumed, entry, conv, wait_s)
        if conn.fingerprint is not None:
            self._reconnector.connected(conn.fingerprint)

    def _check_resumed(self, entry: Entry, conv, waited_s: float) -> None:
        if self._registry.is_live(entry) and self.delivery.awaits_got(conv, entry.conn):
            self._drop(entry, CloseReason.NO_RECEIPTS, silent_s=waited_s)

    def _establish(self, entry: Entry) -> None:
        conn = entry.conn
        hello = conn.protocol.theirs
        if entry.target is not None:
            host, port = entry.target
        else:
            host = conn.remote_ip
            port = hello.port if hello else conn.transport.peername[1]
        info = PeerInfo(entry.peer_id or self._registry.new_id(), host, port, conn.direction,
                        hello is not None, hello.node_id if hello else None,
                        hello.name if hello else None, conn.fingerprint, entry.trusted_name)
        self._registry.establish(entry, info)
        if not self._reading:                  # our output is congested: it waits too
            conn.set_reading(False)
        self._observer.peer_connected(info)
        if hello is not None and hello.bad_name is not None:
            self._observer.bad_name(info, hello.bad_name)
        self._settle_if_attempt(entry, None)

    def _renamed(self, entry: Entry, name: str | None, bad: str | None) -> None:
        before = entry.info
        if before is None or not self._registry.is_live(entry):
            return                            # retired or going: nobody to tell about
        if name != before.name:
            after = replace(before, name=name)
            self._registry.update(entry, after)
            self._observer.peer_renamed(before, after)
        if bad is not None:
            self._observer.bad_name(entry.info, bad)

    def _peer_refused(self, entry: Entry, refusal: wire.PeerRefusal) -> None:
        if self._dialer.is_attempt(entry):
            self._handshake_over(entry, ConnectFailed(Failure.REFUSED_BY_PEER,
                                                      refusal=refusal.refusal,
                                                      limit=refusal.limit, detail=refusal.detail))
        elif entry.info is not None and not entry.quiet:
            self._drop(entry, CloseReason.REFUSED, detail=refusal.detail)

    def _handshake_over(self, entry: Entry, failed: ConnectFailed,
                        refusal: Refusal | None = None, introduce: bool = True) -> None:
        """A connection that will not become (or stay) a peer: refuse it, or just close it."""
        conn = entry.conn
        if refusal is not None:
            conn.refuse(refusal, introduce=introduce)
        elif conn.protocol.state is not State.FINISHING:
            conn.abort()
        if entry.info is None:              # never shown: it goes quietly
            self._registry.linger(entry, quiet=True)
        self._settle_if_attempt(entry, failed)

    # -- duplicates -----------------------------------------------------------------------

    def _other_connection(self, entry: Entry, node_id: str) -> Entry | None:
        """A live connection to the same peer: established, or deferred with its hello.

        The same peer is the same instance id *and* the same proven identity: a
        stranger who learned someone's instance id cannot pass for them, nor make
        them a duplicate of itself.
        """
        fingerprint = entry.conn.fingerprint
        for other in [*self._registry.live_entries(), *self._registry.pending_entries()]:
            theirs = other.conn.protocol.theirs
            if other is not entry and theirs is not None and theirs.node_id == node_id \
                    and other.conn.fingerprint == fingerprint \
                    and (other.info is not None or other.deferred):
                return other
        return None

    def _keep(self, winner: Entry, loser: Entry) -> None:
        """``winner`` stays (under the id already shown, or the one our connect reserved)."""
        shown = loser.info
        loser_dialled = self._dialer.is_attempt(loser)
        if winner.info is None and shown is None and loser_dialled:
            winner.use_id(loser.peer_id)
        elif winner.info is not None and loser_dialled:
            self._observer.already_connected(winner.info)
        self._retire(loser)
        if winner.info is None:
            if shown is not None:
                info = replace(shown, direction=winner.conn.direction)
                self._accept(winner, winner.conn.protocol.theirs, info)
                if self._dialer.is_attempt(winner):
                    self._observer.already_connected(info)
            else:
                self._accept(winner, winner.conn.protocol.theirs)
        loser.stands_for(winner.info)

    def _retire(self, loser: Entry) -> None:
        """Close a duplicate quietly: half-close, show what it still brings, no event."""
        self._registry.linger(loser, quiet=True)
        loser.conn.retire()

    def _await_replacement(self, entry: Entry, info: PeerInfo) -> None:
        """A connection that gave way to its duplicate: keep its place for the other one.

        If the other one never comes (``linger_s``), the peer is reported gone after all.
        """
        key = (entry.conn.fingerprint, info.node_id)
        self._registry.keep_place(key, info)

        def gone() -> None:
            if self._registry.give_up_place(key, info):
                self._observer.peer_lost(info, Lost(CloseReason.CLOSED))
        self._reactor.call_later(self.options.timing.linger_s, gone)

    # -- endings --------------------------------------------------------------------------

    def _drop(self, entry: Entry, reason: CloseReason, **detail) -> None:
        """Close now, on purpose, and say why (once it is gone)."""
        entry.closing(reason, **detail)
        entry.conn.abort()

    def _ended(self, conn: Connection, exc: BaseException | None, unsent: int) -> None:
        entry, live = self._registry.end(conn)
        if entry.counted:
            self._admission.departed(conn.remote_ip)
        if entry.farewell:
            self._admission.farewell_ends()
        attempt = self._dialer.attempt
        if self._dialer.is_attempt(entry):
            self._settle(attempt, _failure(exc))
        info = entry.info
        quiet = entry.quiet
        undelivered = None
        if entry.conversation is not None:
            undelivered = self.delivery.detach(entry.conversation, conn, info)
            unsent = 0                  # they are in the outbox (or counted as undelivered)
        if live and entry.moved and not self.shutting_down:
            self._await_replacement(entry, info)
            live, quiet = False, True
        reason = entry.close_reason
        if info is not None and not quiet and (live or reason is not None):
            ending = maybe_tls_ending(exc)
            detail = entry.close_detail
            if reason is None and ending is TlsEnding.DAMAGED:
                reason = CloseReason.DAMAGED
                detail = {"detail": tls_words(exc)}
            elif ending is TlsEnding.CLOSED:
                exc = None                # gone without TLS's goodbye: it closed
            if reason is None:
                reason = CloseReason.RESET if exc is not None else CloseReason.CLOSED
            if self.shutting_down:
                reason = CloseReason.EXITING
            if unsent or reason not in (CloseReason.TERMINATED, CloseReason.EXITING):
                self._observer.peer_lost(info, Lost(reason, errno=getattr(exc, "errno", None),
                                                    unsent=unsent, **detail))
            if live and info.fingerprint is not None and info.trusted_name \
                    and reason is not CloseReason.TERMINATED and not self.shutting_down:
                trusted = self.trust.lookup_by_id(info.fingerprint) if self.trust else None
                if trusted is not None:
                    self._reconnector.want(trusted.fingerprint, trusted.name, trusted.address)
        if undelivered is not None:
            if self.shutting_down:
                if not undelivered.queued:
                    self._lost_at_exit.append(undelivered)
            elif not quiet or not undelivered.queued:
                self._observer.undelivered(undelivered)
                if not undelivered.queued:
                    self._lost_before_exit += undelivered.count
        self._maybe_shutdown_done()

    def _check_stalls(self) -> None:
        """A peer that reads nothing of what we send for ``send_timeout_s`` is dropped."""
        now = self._reactor.time()
        limit = self.options.send_timeout_s
        for entry in self._registry.live_entries():
            transport = entry.conn.transport
            if transport.get_write_buffer_size() and now - transport.last_write_progress > limit:
                self._drop(entry, CloseReason.STALLED,
                           silent_s=now - transport.last_write_progress)
        self._stall_timer = self._reactor.call_later(self._stall_check_s(), self._check_stalls)


def address_problem(exc: AddressError) -> AddressProblem:
    """The address parser's problem in the network's vocabulary (the same names)."""
    return AddressProblem[exc.problem.name]


def _failure(exc: BaseException | None) -> ConnectFailed:
    if maybe_tls_ending(exc) is not None:     # a connect whose TLS did not come to be
        return ConnectFailed(Failure.TLS, detail=tls_words(exc))
    if exc is None:
        return ConnectFailed(Failure.CLOSED)
    return ConnectFailed(Failure.NETWORK, errno=getattr(exc, "errno", None) or errnos.ECONNRESET)

"""The node: our side of the chat network.

It owns the listening socket, the peer table and one
:class:`~network.connection.Connection` per socket, and offers the verbs
the commands use (connect, cancel_connect, terminate, send, shutdown). It
never prints: outcomes go to an *observer* (:class:`Observer`; the console
implements it) as Enums and numbers, and a verb that says no raises
:class:`~network.outcomes.Refused`.

The protocol decides what a connection *is* (:mod:`network.peer_protocol`);
the node decides what to do about it: which id it gets, whether a hello is
welcome (not ourselves, not a duplicate, room in the table), and which of
two connections to the same peer survives.

**Simultaneous connects.** When A connects to B while B connects to A, each
side ends up holding two connections to the same node. Both keep the one
*initiated by the lower node id* (the rule BitTorrent and Syncthing use), so
both keep the same one; the other is retired quietly (half-closed, its
last messages still shown, no event). While our own connect is unresolved,
an incoming hello announcing the port we are connecting to is answered but
not yet shown, so the user sees one ``connected to peer N`` under the id the
``connect`` reserved, never a connection that then closes.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Callable

from reactor.listener import Listener, open_listening_socket
from reactor.loop import Reactor
from reactor.netutil import (AddressError, is_local_address, local_ipv4_addresses, my_ipv4,
                             resolve_ipv4)
from reactor.transport import Connector, StreamTransport

from . import wire
from .admission import MAX_FAREWELLS, Admission
from .attempt import Attempt
from .connection import Connection
from .events import ConnectionEvents
from .observer import Observer
from .identities import IdentityRules
from .fanout import Fanout
from .names import BadName, check_name
from .outcomes import CloseReason, ConnectFailed, Direction, Failure, Refusal, Refused
from .peer_protocol import PeerProtocol, Timing
from .peers import PeerInfo, PeerTable

STALL_CHECK_S = 1.0         # how often a peer that reads nothing is looked for (at most)


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
    timing: Timing = field(default_factory=Timing)


class Node(ConnectionEvents, IdentityRules):
    def __init__(self, reactor: Reactor, observer: Observer,
                 options: NodeOptions | None = None, node_id: str | None = None,
                 identity=None, trust=None) -> None:
        """``identity`` (network.identity.Identity) makes connections to other chat.py
        peers with identities encrypted; ``trust`` (network.trust.TrustStore) names them."""
        self._reactor = reactor
        self._observer = observer
        self.options = options or NodeOptions()
        self.identity = identity
        self.trust = trust
        self._contexts = None           # TLS contexts per peer certificate, made when needed
        self.node_id = node_id or os.urandom(wire.NODE_ID_CHARS // 2).hex()
        heartbeat_ms = min(max(round(self.options.heartbeat_s * 1000), wire.MIN_HEARTBEAT_MS),
                           wire.MAX_HEARTBEAT_MS)
        self._heartbeat_ms = heartbeat_ms
        self.name = self.options.name
        self._table = PeerTable()
        self._by_id: dict[int, Connection] = {}     # established, live
        self._pending: set[Connection] = set()      # still in their handshake
        self._lingering: set[Connection] = set()    # terminated, refused, retired: closing
        self._attempt: Attempt | None = None        # our one connect in flight
        self._moved: dict = {}                      # (fingerprint, node id) -> place kept
        self._fanout = Fanout(reactor, lambda: list(self._by_id.values()))
        self._admission = Admission(self.options.max_peers, self.options.max_per_address,
                                    reactor.call_later, observer.incoming_refused)
        self._listener: Listener | None = None
        self._local_addresses: set[str] = set()
        self._stall_timer = None
        self._reading = True
        self._shutdown_done: Callable[[], None] | None = None
        self._shutdown_timer = None
        self.shutting_down = False

    # -- listening --------------------------------------------------------------------------

    def listen(self, host: str, port: int) -> None:
        """Bind and start accepting; raises ``OSError`` (EADDRINUSE, EACCES ...)."""
        sock = open_listening_socket(host, port)
        self._listener = Listener(self._reactor, sock, self._accepted, self._starved)
        self._local_addresses = local_ipv4_addresses()
        self._stall_timer = self._reactor.call_later(self._stall_check_s(), self._check_stalls)

    def _stall_check_s(self) -> float:
        return min(STALL_CHECK_S, self.options.send_timeout_s / 2)

    @property
    def port(self) -> int:
        return self._listener.port if self._listener else 0

    def my_ip(self) -> str:
        return my_ipv4()

    def _hello(self) -> wire.Hello:
        return wire.Hello(self.port, self.node_id, self._heartbeat_ms, self.name)

    def _new_connection(self, direction: Direction, ip: str) -> Connection:
        protocol = PeerProtocol(direction, self._hello(), self._reactor.time(),
                                self.options.timing,
                                cert_der=self.identity.cert_der if self.identity else None)
        return Connection(self._reactor, self, protocol, direction, ip)

    def _room(self, ip: str | None) -> tuple[Refusal | None, int]:
        """Room for one more connection? Evicts a long-silent plain client if that makes it."""
        plain = ((conn.protocol.last_received, conn) for conn in self._by_id.values()
                 if not conn.protocol.speaks_protocol)
        refusal, limit, evict = self._admission.check(
            ip, len(self._by_id) + len(self._pending), plain, self._reactor.time())
        if evict is not None:
            self._drop(evict, CloseReason.EVICTED,
                       silent_s=self._reactor.time() - evict.protocol.last_received)
        return refusal, limit

    def _accepted(self, sock: socket.socket, addr: tuple) -> None:
        if self.shutting_down:
            sock.close()
            return
        ip = addr[0]
        refusal, limit = self._room(ip)
        if refusal is not None:
            self._admission.refused(f"{ip}:{addr[1]}", refusal, limit)
            if self._admission.farewells >= MAX_FAREWELLS:
                sock.close()
                return
            protocol = PeerProtocol.refusing(refusal, limit, self._hello(),
                                             self._reactor.time(), self.options.timing)
            conn = Connection(self._reactor, self, protocol, Direction.INCOMING, ip)
            conn.retired = conn.farewell = True
            self._admission.farewells += 1
            self._lingering.add(conn)
        else:
            conn = self._new_connection(Direction.INCOMING, ip)
            conn.counted = True
            self._admission.arrived(ip)
            self._pending.add(conn)
        self._attach(conn, sock)

    def _attach(self, conn: Connection, sock: socket.socket) -> None:
        try:
            StreamTransport(self._reactor, sock, conn)
        except OSError as exc:       # reset before we could even look at it
            sock.close()
            conn.connection_lost(exc)
            return

    def _starved(self, exc: OSError, retry_s: float) -> None:
        self._observer.accept_paused(exc.errno, retry_s)

    # -- the verbs the commands use ---------------------------------------------------------

    def peers(self) -> list[PeerInfo]:
        return list(self._table)

    def peer(self, peer_id: int) -> PeerInfo | None:
        return self._table.get(peer_id)

    def peer_at(self, host: str, port: int) -> PeerInfo | None:
        """The connection to the peer listening at ``host:port`` (as ``list`` shows it)."""
        try:
            ip = resolve_ipv4(host)
        except AddressError:
            return None
        return self._table.maybe_find_address(ip, port)

    def connect(self, host: str, port: int, done: Callable[[bool], None]
                ) -> tuple[str, int]:
        """Start connecting; ``done(ok)`` once it settled. Returns ``(ip, reserved id)``.

        Raises :class:`Refused` when nothing can be tried (a bad address,
        ourselves, already connected, full, another connect in flight).
        """
        try:
            ip = resolve_ipv4(host)
        except AddressError as exc:
            raise Refused(Refusal.NO_ROUTE, detail=exc.problem.value) from None
        if ip == "0.0.0.0" or ip.endswith(".255"):
            raise Refused(Refusal.NO_ROUTE, detail="unusable")
        if self._attempt is not None:
            raise Refused(Refusal.CONNECTING)
        if port == self.port and is_local_address(ip, self._local_addresses):
            raise Refused(Refusal.SELF)
        existing = self._table.maybe_find_address(ip, port)
        if existing is not None and existing.direction is Direction.OUTGOING:
            # Only an address we dialled ourselves is a fact; an incoming peer's port is
            # its claim, which the hello settles (so no stranger can squat an address).
            raise Refused(Refusal.DUPLICATE, peer_id=existing.id)
        refusal, limit = self._room(None)
        if refusal is not None:
            raise Refused(refusal, limit=limit)
        attempt = Attempt(ip, port, self._table.reserve_for_connect(), done)
        try:
            attempt.connector = Connector(self._reactor, (ip, port),
                                           self.options.connect_timeout_s,
                                           self._tcp_connected, self._tcp_failed)
        except OSError as exc:   # no socket to be had: EMFILE, ENOBUFS ...
            self._table.unused(attempt.peer_id)
            raise Refused(Refusal.NO_SOCKET, errno=exc.errno) from None
        self._attempt = attempt
        return ip, attempt.peer_id

    def cancel_connect(self) -> tuple[str, int] | None:
        """Give up the connect in flight (Ctrl-C at a terminal); ``None`` if there is none."""
        attempt = self._attempt
        if attempt is None:
            return None
        if attempt.connector is not None:
            attempt.connector.cancel()
        if attempt.conn is not None:
            self._pending.discard(attempt.conn)
            attempt.conn.abort()
        self._settle(attempt, ConnectFailed(Failure.CANCELLED))
        return attempt.ip, attempt.port

    def terminate(self, peer_id: int) -> PeerInfo:
        """Close one connection: what is buffered gets ``flush_timeout_s`` to leave."""
        self._fanout.flush()
        conn = self._by_id.pop(peer_id)
        info = self._table.remove(peer_id)
        conn.close_reason = CloseReason.TERMINATED
        self._lingering.add(conn)
        conn.close()
        self._reactor.call_later(self.options.flush_timeout_s, conn.abort)
        return info

    def send(self, peer_id: int, text: str, done: Callable[[bool], None]) -> None:
        """Queue one message; ``done(True)`` once it is in the connection's buffer.

        Above the buffer's high-water mark it waits (and so does a caller
        that waits for ``done``); ``done(False)`` if the connection ends first.
        """
        self._fanout.flush()
        self._by_id[peer_id].send(text, done)

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
                raise Refused(Refusal.BAD_NAME, problem=exc.problem, detail=exc.char) from None
        self._fanout.flush()
        self.name = name
        now = self._reactor.time()
        for conn in [*self._by_id.values(), *self._pending]:
            conn.protocol.send_name(name, now)
            conn.handle([])
        return sum(1 for conn in self._by_id.values() if conn.protocol.speaks_protocol)

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
            for conn in self._by_id.values():
                conn.set_reading(reading)

    def shutdown(self, done: Callable[[], None]) -> int:
        """Say goodbye to everyone, flush (at most ``flush_timeout_s``), then ``done()``.

        Returns how many connections are being closed.
        """
        self._fanout.flush()
        self.shutting_down = True
        self._shutdown_done = done
        if self._listener is not None:
            self._listener.close()
        if self._attempt is not None:
            self.cancel_connect()
        for timer in (self._stall_timer,):
            if timer is not None:
                timer.cancel()
        self._admission.close()
        for conn in list(self._pending):
            conn.abort()
        count = len(self._by_id)
        now = self._reactor.time()
        for conn in list(self._by_id.values()):
            conn.close_reason = CloseReason.EXITING
            conn.flush_waiting()
            conn.protocol.send_bye(now)
            conn.close()
        self._shutdown_timer = self._reactor.call_later(self.options.flush_timeout_s,
                                                         self._abort_all)
        self._maybe_shutdown_done()
        return count

    def _abort_all(self) -> None:
        self._shutdown_timer = None
        for conn in [*self._by_id.values(), *self._pending, *self._lingering]:
            conn.abort()
        self._maybe_shutdown_done(force=True)

    def _maybe_shutdown_done(self, force: bool = False) -> None:
        busy = self._by_id or self._pending or self._lingering
        if self._shutdown_done is None or (busy and not force):
            return
        done, self._shutdown_done = self._shutdown_done, None
        if self._shutdown_timer is not None:
            self._shutdown_timer.cancel()
        self._reactor.call_soon(done)


"""What the node does with what its connections report (the other half of :class:`Node`).

Kept apart from the verbs in ``node.py`` so that each file reads as one
story: ``node.py`` is what our user asks for, this is what the network
tells us. :class:`ConnectionEvents` is a mixin of :class:`network.node.Node`
and uses its state (the table, the connections, the connect in flight).
"""

from __future__ import annotations

import errno as errnos
import socket
from dataclasses import replace

from .connection import Connection
from .duplicates import Duplicates
from .outcomes import CloseReason, ConnectFailed, Direction, Failure, Lost, Refusal
from .peer_protocol import State
from .protocol_events import (BadHello, BecamePlain, CloseNow, Goodbye, HandshakeTimedOut,
                              HelloReceived, LineDiscarded, Messages, NameChanged, PeerRefused,
                              PeerSilent, StartTLS)
from .identities import tls_kind, tls_words
from .peers import PeerInfo


class ConnectionEvents(Duplicates):
    """The node's answers to connection events (``Connection`` calls these two methods)."""

    # -- TCP connect of our attempt -----------------------------------------------------

    def _tcp_connected(self, sock: socket.socket) -> None:
        attempt = self._attempt
        attempt.connector = None
        conn = self._new_connection(Direction.OUTGOING, attempt.ip)
        conn.peer_id, conn.target = attempt.peer_id, (attempt.ip, attempt.port)
        attempt.conn = conn
        self._pending.add(conn)
        self._attach(conn, sock)

    def _tcp_failed(self, exc: OSError) -> None:
        attempt = self._attempt
        attempt.connector = None
        if isinstance(exc, TimeoutError):
            failed = ConnectFailed(Failure.TIMED_OUT, timeout_s=self.options.connect_timeout_s)
        else:
            failed = ConnectFailed(Failure.NETWORK, errno=exc.errno)
        self._settle(attempt, failed)

    def _settle(self, attempt, failed: ConnectFailed | None) -> None:
        """Our connect is over: established (``None``) or failed (``failed``).

        Incoming hellos that waited for it are decided now.
        """
        if self._attempt is not attempt:
            return
        self._attempt = None
        if self._table.get(attempt.peer_id) is None:    # it never named a connection
            self._table.unused(attempt.peer_id)
        if failed is not None and failed.failure is not Failure.CANCELLED:
            self._observer.connect_failed(attempt.ip, attempt.port, failed)
        attempt.done(failed is None)
        for conn in attempt.deferred:
            if conn.deferred and not conn.transport.closed:
                conn.deferred = False
                self._decide_hello(conn, conn.protocol.theirs)

    # -- events ---------------------------------------------------------------------------

    def connection_events(self, conn: Connection, events: list) -> None:
        for event in events:
            kind = type(event)
            if kind is Messages:
                if conn.info is not None:
                    self._observer.messages_received(conn.info, event.texts)
            elif kind is HelloReceived:
                self._decide_hello(conn, event.hello)
            elif kind is BecamePlain:
                if self.options.trusted_only:       # a plain client proves no identity
                    self._refuse_untrusted(conn, Refusal.UNTRUSTED)
                else:
                    self._establish(conn)
            elif kind is LineDiscarded:
                if conn.info is not None:
                    self._observer.line_too_long(conn.info, event.nbytes, event.limit)
            elif kind is NameChanged:
                self._renamed(conn, event.name, event.bad)
            elif kind is Goodbye:
                if event.duplicate:
                    conn.moved = True        # its place goes to the other connection
                else:
                    conn.close_reason = conn.close_reason or CloseReason.LEFT
            elif kind is PeerSilent:
                self._drop(conn, CloseReason.TIMED_OUT, silent_s=event.silent_s)
            elif kind is PeerRefused:
                self._peer_refused(conn, event.refusal)
            elif kind is BadHello:
                self._bad_hello(conn, event.refusal, event.detail)
            elif kind is HandshakeTimedOut:
                self._handshake_over(conn, ConnectFailed(Failure.HANDSHAKE))
                conn.abort()
            elif kind is StartTLS:
                self._start_tls(conn, event)
            elif kind is CloseNow:
                conn.abort()

    # -- names ----------------------------------------------------------------------------

    def _shown_name(self, node_id: str | None, announced: str | None) -> str | None:
        """The name we show for a peer: for now, what it announced.

        Names are labels, not proof. When identities and trust arrive, the
        name our user gave a peer when trusting it belongs here, and wins
        over whatever the peer announces.
        """
        return announced

    def _renamed(self, conn: Connection, announced: str | None, bad: str | None) -> None:
        before = conn.info
        if before is None or self._by_id.get(before.id) is not conn:
            return                            # retired or going: nobody to tell about
        name = self._shown_name(before.node_id, announced)
        if name != before.name:
            after = replace(before, name=name)
            self._table.put(after)
            conn.info = after
            self._observer.peer_renamed(before, after)
        if bad is not None:
            self._observer.bad_name(conn.info, bad)

    def _peer_refused(self, conn: Connection, refusal) -> None:
        if self._attempt is not None and self._attempt.conn is conn:
            self._handshake_over(conn, ConnectFailed(Failure.REFUSED_BY_PEER,
                                                     refusal=refusal.refusal,
                                                     limit=refusal.limit, detail=refusal.detail))
        elif conn.info is not None and not conn.retired:
            self._drop(conn, CloseReason.REFUSED, detail=refusal.detail)

    def _bad_hello(self, conn: Connection, refusal: Refusal, detail: str) -> None:
        host, port = conn.transport.peername
        self._observer.bad_hello(f"{host}:{port}", refusal, detail)
        self._handshake_over(conn, ConnectFailed(Failure.HANDSHAKE, refusal=refusal,
                                                 detail=detail))

    def _handshake_over(self, conn: Connection, failed: ConnectFailed,
                        refusal: Refusal | None = None, introduce: bool = True) -> None:
        """A connection that will not become (or stay) a peer: refuse it, or just close it."""
        if refusal is not None:
            conn.handle(conn.protocol.refuse(refusal, self._reactor.time(),
                                             introduce=introduce))
        elif conn.protocol.state is not State.FINISHING:
            conn.abort()
        if conn.info is None:              # never shown: it goes quietly
            self._pending.discard(conn)
            conn.retired = True
            self._lingering.add(conn)
        if self._attempt is not None and self._attempt.conn is conn:
            self._settle(self._attempt, failed)

    # -- hellos ---------------------------------------------------------------------------

    def _decide_hello(self, conn: Connection, hello) -> None:
        attempt = self._attempt
        if not self._trusted_enough(conn, hello):
            return
        if hello.node_id == self.node_id and conn.fingerprint == self._our_fingerprint():
            self._handshake_over(conn, ConnectFailed(Failure.REFUSED_BY_US,
                                                     refusal=Refusal.SELF), Refusal.SELF)
            return
        if (conn.direction is Direction.INCOMING and conn.info is None and attempt is not None
                and not attempt.resolved()
                and (attempt.conn is not None or attempt.port == hello.port)):
            # Maybe the peer we are connecting to, connecting to us: answer, decide once our
            # own connect knows who answered it. That is soon once TCP is up (the hello
            # wait at most); before that, only a hello announcing the very port we dial
            # waits, since a dead address can take the whole connect timeout.
            conn.deferred = True
            attempt.deferred.append(conn)
            conn.protocol.answer_hello(self._reactor.time())
            conn.handle([])
            return
        other = self._other_connection(conn, hello.node_id)
        moved = self._moved.pop((conn.fingerprint, hello.node_id), None) if other is None \
            else None
        if moved is not None:
            # Its duplicate ended first (the other side told us it gave way): this one
            # takes its place, under the same id, unseen.
            self._accept(conn, hello, replace(moved, direction=conn.direction))
            if attempt is not None and conn is attempt.conn:
                self._observer.already_connected(conn.info)
                self._settle(attempt, None)
        elif other is None:
            self._accept(conn, hello)
        elif other.direction is conn.direction or conn.info is not None:
            # The same peer twice from the same side (or a late hello that duplicates
            # a peer we have): keep the one we have.
            if attempt is not None and conn is attempt.conn:
                self._retire(conn)
                conn.info = other.info
                self._observer.already_connected(other.info)
                self._settle(attempt, None)
            else:
                self._handshake_over(conn, ConnectFailed(Failure.HANDSHAKE), Refusal.DUPLICATE)
        else:
            # Two connections between the same two nodes, one each way: both sides keep
            # the one initiated by the lower node id.
            keep_outgoing = self.node_id < hello.node_id
            if (conn.direction is Direction.OUTGOING) == keep_outgoing:
                self._keep(conn, other)
            else:
                self._keep(other, conn)
            if attempt is not None and attempt.conn in (conn, other):
                self._settle(attempt, None)

    def _accept(self, conn: Connection, hello, info: PeerInfo | None = None) -> None:
        conn.deferred = False
        events = conn.protocol.accept_peer(self._reactor.time())
        if info is not None:                          # takes over an id already shown
            self._pending.discard(conn)
            self._table.put(info)
            self._by_id[info.id] = conn
            conn.info = info
            if not self._reading:
                conn.set_reading(False)
        elif conn.info is not None:                   # a plain connection was chat.py
            info = replace(conn.info, speaks_protocol=True, node_id=hello.node_id,
                           port=conn.info.port if conn.target else hello.port,
                           fingerprint=conn.fingerprint, trusted_name=conn.trusted_name,
                           name=self._shown_name(hello.node_id, hello.name))
            self._table.put(info)
            conn.info = info
            self._observer.peer_upgraded(info)
            if hello.bad_name is not None:
                self._observer.bad_name(info, hello.bad_name)
        else:
            self._establish(conn)
        conn.handle(events)

    def _establish(self, conn: Connection) -> None:
        hello = conn.protocol.theirs
        if conn.target is not None:
            host, port = conn.target
        else:
            host = conn.remote_ip
            port = hello.port if hello else conn.transport.peername[1]
        peer_id = conn.peer_id or self._table.reserve()
        info = PeerInfo(peer_id, host, port, conn.direction, hello is not None,
                        hello.node_id if hello else None,
                        self._shown_name(hello.node_id, hello.name) if hello else None,
                        conn.fingerprint, conn.trusted_name)
        self._pending.discard(conn)
        self._table.put(info)
        self._by_id[peer_id] = conn
        conn.info, conn.peer_id = info, peer_id
        if not self._reading:                  # our output is congested: it waits too
            conn.set_reading(False)
        self._observer.peer_connected(info)
        if hello is not None and hello.bad_name is not None:
            self._observer.bad_name(info, hello.bad_name)
        attempt = self._attempt
        if attempt is not None and attempt.conn is conn:
            self._settle(attempt, None)

    # -- endings --------------------------------------------------------------------------

    def _drop(self, conn: Connection, reason: CloseReason, **detail) -> None:
        """Close now, on purpose, and say why (once it is gone)."""
        conn.close_reason = reason
        conn.close_detail = detail
        conn.abort()

    def connection_ended(self, conn: Connection, exc: BaseException | None,
                         unsent: int) -> None:
        self._pending.discard(conn)
        self._lingering.discard(conn)
        if conn.counted:
            self._admission.departed(conn.remote_ip)
        if conn.farewell:
            self._admission.farewells -= 1
        attempt = self._attempt
        if attempt is not None and attempt.conn is conn:
            self._settle(attempt, _failure(exc))
        info = conn.info
        live = info is not None and self._by_id.get(info.id) is conn
        if live:
            del self._by_id[info.id]
            self._table.remove(info.id)
        if live and conn.moved and not self.shutting_down:
            self._await_replacement(conn, info)
            live = False
            conn.retired = True
        reason = conn.close_reason
        if info is not None and not conn.retired and (live or reason is not None):
            kind = tls_kind(exc)
            if reason is None and kind == "damaged":
                reason = CloseReason.DAMAGED
                conn.close_detail = {"detail": tls_words(exc)}
            elif kind == "closed":
                exc = None                # gone without TLS's goodbye: it closed
            if reason is None:
                reason = CloseReason.RESET if exc is not None else CloseReason.CLOSED
            if self.shutting_down:
                reason = CloseReason.EXITING
            if unsent or reason not in (CloseReason.TERMINATED, CloseReason.EXITING):
                self._observer.peer_lost(info, Lost(reason, errno=getattr(exc, "errno", None),
                                                    unsent=unsent, **conn.close_detail))
        self._maybe_shutdown_done()

    def _check_stalls(self) -> None:
        """A peer that reads nothing of what we send for ``send_timeout_s`` is dropped."""
        now = self._reactor.time()
        limit = self.options.send_timeout_s
        for conn in list(self._by_id.values()):
            transport = conn.transport
            if transport.get_write_buffer_size() and now - transport.last_write_progress > limit:
                self._drop(conn, CloseReason.STALLED, silent_s=now - transport.last_write_progress)
        self._stall_timer = self._reactor.call_later(self._stall_check_s(), self._check_stalls)


def _failure(exc: BaseException | None) -> ConnectFailed:
    if tls_kind(exc) is not None:        # a connect whose TLS did not come to be
        return ConnectFailed(Failure.TLS, detail=tls_words(exc))
    if exc is None:
        return ConnectFailed(Failure.CLOSED)
    return ConnectFailed(Failure.NETWORK, errno=getattr(exc, "errno", None) or errnos.ECONNRESET)

"""The node: our side of the chat network.

It owns the listening socket, the peer table and one connection object per
socket, and offers the verbs the commands need (connect, terminate, send,
shutdown). It never prints: every outcome is reported to an *observer*, an
object with the methods listed in :class:`Observer` (the console implements
them; tests use a recorder).

Life of a connection (``_Connection``)::

    HANDSHAKE --hello / first plain line / HELLO_WAIT_S--> OPEN --> CLOSED
        \\--refused, failed, timed out---------------------------------^

An outgoing connection sends our hello as soon as TCP connects; an incoming
one waits for the other side to speak first. A peer that answers with a hello
is one of ours (heartbeats, BYE); one that sends a plain line, or nothing
within ``HELLO_WAIT_S``, is a plain TCP client such as ``nc`` and gets no
control traffic at all. Only then is the connection *established*: it gets
an id and the observer hears ``peer_connected``.
"""

from __future__ import annotations

import collections
import errno
import os
import socket
from dataclasses import dataclass
from typing import Callable, Protocol as TypingProtocol

from . import wire
from reactor.lines import LineCodec, LineTooLong
from reactor.listener import Listener, open_listening_socket
from reactor.loop import Reactor
from reactor.netutil import is_local_address, local_ipv4_addresses, my_ipv4, resolve_ipv4
from .peers import INCOMING, OUTGOING, PeerInfo, PeerTable
from reactor.protocol import Protocol
from reactor.transport import Connector, StreamTransport

HELLO_WAIT_S = 1.0          # how long a new connection may stay silent before it counts as raw
RAW_FLUSH_S = 0.5           # a raw peer's unterminated text is shown after this much quiet
SHUTDOWN_FLUSH_S = 2.0      # how long exit waits for buffered messages to leave
HEARTBEAT_MISSES = 3        # periods of silence before one of our peers is dropped
REFUSAL_SUMMARY_S = 1.0     # refused-connection notices are summed up over this period

# Close reasons reported to the observer.
CLOSED = "closed"           # the other side closed the connection
LEFT = "left"               # the other side exited (it said BYE)
RESET = "reset"             # the connection failed (reset, broken pipe ...)
TIMED_OUT = "timed out"     # heartbeats stopped
STALLED = "stalled"         # it stopped reading what we send


@dataclass
class NodeOptions:
    connect_timeout_s: float = 5.0
    heartbeat_s: float = 15.0
    send_timeout_s: float = 30.0
    max_peers: int = 100
    hello_wait_s: float = HELLO_WAIT_S
    raw_flush_s: float = RAW_FLUSH_S


class Observer(TypingProtocol):
    def peer_connected(self, info: PeerInfo) -> None: ...
    def peer_lost(self, info: PeerInfo, reason: str, detail: str) -> None: ...
    def messages_received(self, info: PeerInfo, texts: list[str]) -> None: ...
    def line_too_long(self, info: PeerInfo, nbytes: int, limit: int) -> None: ...
    def connect_failed(self, host: str, port: int, reason: str) -> None: ...
    def incoming_refused(self, address: str | None, count: int, limit: int) -> None: ...
    def accept_paused(self, reason: str, retry_s: float) -> None: ...


def describe_error(exc: BaseException | None) -> str:
    """A few words for a socket error, as a user would want to read them."""
    if exc is None:
        return "closed"
    code = getattr(exc, "errno", None)
    words = {
        errno.ECONNREFUSED: "connection refused (nothing is listening on that port)",
        errno.ECONNRESET: "connection reset by peer",
        errno.EPIPE: "broken pipe",
        errno.ETIMEDOUT: "timed out",
        errno.EHOSTUNREACH: "no route to host",
        errno.ENETUNREACH: "network is unreachable",
        errno.EADDRNOTAVAIL: "address not available",
    }
    if isinstance(exc, TimeoutError) and exc.strerror:
        return f"timed out ({exc.strerror})"
    if code in words:
        return words[code]
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


class Node:
    def __init__(self, reactor: Reactor, observer: Observer,
                 options: NodeOptions | None = None, node_id: str | None = None) -> None:
        self._reactor = reactor
        self._observer = observer
        self.options = options or NodeOptions()
        self.node_id = node_id or os.urandom(8).hex()
        self._table = PeerTable()
        self._open: dict[int, _Connection] = {}
        self._handshaking: set[_Connection] = set()
        self._listener: Listener | None = None
        self._connector: Connector | None = None
        self._local_addresses: set[str] = set()
        self._tick_timer = None
        self._refusals = 0
        self._refusal_timer = None
        self._shutdown_done: Callable[[], None] | None = None
        self._shutdown_timer = None
        self.shutting_down = False
        self.reading_paused = False     # see pause_reading()

    # -- listening ---------------------------------------------------------------------

    def listen(self, host: str, port: int) -> None:
        """Bind and start accepting; raises ``OSError`` (EADDRINUSE, EACCES ...)."""
        sock = open_listening_socket(host, port)
        self._listener = Listener(self._reactor, sock, self._accepted, self._starved)
        self._local_addresses = local_ipv4_addresses()
        self._schedule_tick()

    @property
    def port(self) -> int:
        return self._listener.port if self._listener else 0

    @property
    def host(self) -> str:
        return self._listener.host if self._listener else ""

    def my_ip(self) -> str:
        return my_ipv4()

    def _count(self) -> int:
        return len(self._open) + len(self._handshaking)

    def _accepted(self, sock: socket.socket, addr: tuple) -> None:
        if self.shutting_down:
            sock.close()
            return
        if self._count() >= self.options.max_peers:
            sock.close()
            self._note_refusal(f"{addr[0]}:{addr[1]}")
            return
        try:
            StreamTransport(self._reactor, sock, _Connection(self, INCOMING))
        except OSError:
            sock.close()  # reset before we could even look at it

    def _starved(self, exc: OSError, retry_s: float) -> None:
        self._observer.accept_paused(describe_error(exc), retry_s)

    def _note_refusal(self, address: str) -> None:
        if self._refusal_timer is None:
            self._observer.incoming_refused(address, 1, self.options.max_peers)
            self._refusal_timer = self._reactor.call_later(REFUSAL_SUMMARY_S, self._sum_refusals)
        else:
            self._refusals += 1

    def _sum_refusals(self) -> None:
        self._refusal_timer = None
        if self._refusals:
            count, self._refusals = self._refusals, 0
            self._observer.incoming_refused(None, count, self.options.max_peers)
            self._refusal_timer = self._reactor.call_later(REFUSAL_SUMMARY_S, self._sum_refusals)

    # -- the verbs the commands use -----------------------------------------------------

    def peers(self) -> list[PeerInfo]:
        return list(self._table)

    def peer(self, peer_id: int) -> PeerInfo | None:
        return self._table.get(peer_id)

    def connect(self, host_text: str, port: int, done: Callable[[bool], None]) -> str:
        """Start connecting; ``done(ok)`` is called once it succeeded or failed.

        Raises ``ValueError`` with a user-facing reason when the connection
        is refused before any packet is sent. Returns the numeric address.
        """
        ip = resolve_ipv4(host_text)
        if not 0 < port < 65536:
            raise ValueError(f"port {port} is out of range (1-65535)")
        if ip == "0.0.0.0" or ip.endswith(".255"):
            raise ValueError("that is not an address a peer can have")
        if port == self.port and is_local_address(ip, self._local_addresses):
            raise ValueError("that is this peer itself")
        existing = self._table.maybe_find_address(ip, port)
        if existing is not None:
            raise ValueError(f"already connected to it as peer {existing.id}")
        if self._count() >= self.options.max_peers:
            raise ValueError(f"already at the limit of {self.options.max_peers} peers "
                             f"(see --max-peers)")

        def connected(sock: socket.socket) -> None:
            self._connector = None
            conn = _Connection(self, OUTGOING, (ip, port), done)
            try:
                StreamTransport(self._reactor, sock, conn)
            except OSError as exc:
                sock.close()
                conn.fail(describe_error(exc))

        def failed(exc: OSError) -> None:
            self._connector = None
            self._observer.connect_failed(ip, port, describe_error(exc))
            done(False)

        try:
            self._connector = Connector(self._reactor, (ip, port),
                                        self.options.connect_timeout_s, connected, failed)
        except OSError as exc:  # no socket to be had: EMFILE, ENOBUFS ...
            raise ValueError(describe_error(exc)) from None
        return ip

    def terminate(self, peer_id: int) -> PeerInfo:
        """Close one connection (after flushing it). Raises ``KeyError``."""
        conn = self._open.pop(peer_id)
        info = self._table.remove(peer_id)
        conn.close_by_us()
        return info

    def send(self, peer_id: int, text: str, done: Callable[[bool], None]) -> None:
        """Queue one message; ``done(True)`` once it is in the connection's buffer.

        While that buffer is above its high-water mark the message waits (and
        so does the caller, if it waits for ``done``). ``done(False)`` if the
        connection closes first. Raises ``KeyError`` for an unknown id.
        """
        self._open[peer_id].send_line(text, done)

    def shutdown(self, done: Callable[[], None]) -> int:
        """Say goodbye to everyone, flush (at most ``SHUTDOWN_FLUSH_S``), then ``done()``.

        Returns how many connections are being closed.
        """
        self.shutting_down = True
        self._shutdown_done = done
        if self._listener is not None:
            self._listener.close()
        if self._connector is not None:
            self._connector.cancel()
            self._connector = None
        for timer in (self._tick_timer, self._refusal_timer):
            if timer is not None:
                timer.cancel()
        for conn in list(self._handshaking):
            conn.transport.abort()
        count = len(self._open)
        for conn in list(self._open.values()):
            conn.say_goodbye()
        self._shutdown_timer = self._reactor.call_later(SHUTDOWN_FLUSH_S, self._abort_all)
        self._maybe_shutdown_done()
        return count

    def _abort_all(self) -> None:
        self._shutdown_timer = None
        for conn in list(self._open.values()) + list(self._handshaking):
            conn.transport.abort()
        self._maybe_shutdown_done(force=True)

    def _maybe_shutdown_done(self, force: bool = False) -> None:
        if self._shutdown_done is None or (self._count() and not force):
            return
        done, self._shutdown_done = self._shutdown_done, None
        if self._shutdown_timer is not None:
            self._shutdown_timer.cancel()
        self._reactor.call_soon(done)

    # -- reading flow control (issue 11: whoever reads our stdout fell behind) ------------

    def pause_reading(self) -> None:
        """Stop reading from every open connection until :meth:`resume_reading`.

        TCP then pushes back on the peers: nothing is dropped and our memory
        stays bounded. A connection still in its handshake reads on (it is
        one short line, and pausing it would make it look like a silent
        plain client); it is paused as soon as it is established. While we
        are not reading, a peer's silence is not held against it.
        """
        if not self.reading_paused:
            self.reading_paused = True
            for conn in self._open.values():
                conn.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.reading_paused:
            self.reading_paused = False
            now = self._reactor.time()
            for conn in self._open.values():
                conn.last_received = now   # we were deaf, not they silent
                conn.transport.resume_reading()

    # -- bookkeeping for connections -----------------------------------------------------

    def _established(self, conn: "_Connection", host: str, port: int,
                     hello: wire.Hello | None) -> PeerInfo:
        self._handshaking.discard(conn)
        info = self._table.add(host, port, conn.direction, hello is not None,
                               hello.node_id if hello else None)
        self._open[info.id] = conn
        if self.reading_paused:                  # reading flow control
            conn.transport.pause_reading()
        self._observer.peer_connected(info)
        return info

    def _lost(self, conn: "_Connection", reason: str, detail: str) -> None:
        self._handshaking.discard(conn)
        info = conn.info
        if info is not None and self._open.get(info.id) is conn:
            del self._open[info.id]
            self._table.remove(info.id)
            if not self.shutting_down:
                self._observer.peer_lost(info, reason, detail)
        self._maybe_shutdown_done()

    def _hello_problem(self, hello: wire.Hello) -> str | None:
        if hello.node_id == self.node_id:
            return "that is this peer itself"
        other = self._table.maybe_find_node(hello.node_id)
        if other is not None:
            return f"already connected to it as peer {other.id}"
        return None

    def _schedule_tick(self) -> None:
        period = min(1.0, self.options.heartbeat_s)
        self._tick_timer = self._reactor.call_later(period, self._tick)

    def _tick(self) -> None:
        """Once a period: heartbeats, dead peers and stalled writes."""
        now = self._reactor.time()
        opts = self.options
        for conn in list(self._open.values()):
            conn.check(now, opts.heartbeat_s, opts.send_timeout_s)
        self._schedule_tick()


HANDSHAKE, OPEN, DONE = "handshake", "open", "done"


class _Connection(Protocol):
    """One socket's worth of chat: framing, handshake, heartbeats, waiting sends."""

    __slots__ = ("node", "direction", "target", "done", "codec", "info", "state",
                 "close_reason", "close_detail", "last_received", "last_sent",
                 "waiting_sends", "timer", "transport")

    def __init__(self, node: Node, direction: str, target: tuple[str, int] | None = None,
                 done: Callable[[bool], None] | None = None) -> None:
        self.node = node
        self.direction = direction
        self.target = target
        self.done = done
        self.codec = LineCodec()
        self.info: PeerInfo | None = None
        self.state = HANDSHAKE
        self.close_reason: str | None = None
        self.close_detail = ""
        self.waiting_sends: collections.deque = collections.deque()
        self.timer = None
        self.transport = None

    # -- setup and handshake --------------------------------------------------------------

    def connection_made(self, transport: StreamTransport) -> None:
        self.transport = transport
        node = self.node
        now = node._reactor.time()
        self.last_received = self.last_sent = now
        node._handshaking.add(self)
        if self.direction == OUTGOING:
            self._write(wire.hello_line(node.port, node.node_id))
        self.timer = node._reactor.call_later(node.options.hello_wait_s, self._hello_wait_over)

    def _hello_wait_over(self) -> None:
        self.timer = None
        if self.state == HANDSHAKE:
            self._establish(None)
            self._maybe_arm_raw_flush()

    def _establish(self, hello: wire.Hello | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        host, source_port = self.transport.peername
        if self.direction == OUTGOING:
            host, port = self.target
        else:
            port = hello.port if hello else source_port
        self.state = OPEN
        self.info = self.node._established(self, host, port, hello)
        if self.done is not None:
            done, self.done = self.done, None
            done(True)

    def _handshake_line(self, line: str) -> None:
        if wire.is_control(line):
            verb, words = wire.split_control(line)
            hello = wire.maybe_parse_hello(words) if verb == wire.HELLO else None
            if hello is not None:
                self._got_hello(hello)
                return
            if verb == wire.REFUSE and self.direction == OUTGOING:
                self.fail(" ".join(words) or "the other peer refused the connection")
                return
        self._establish(None)       # it spoke without a hello: a raw peer
        self._line(line)

    def _got_hello(self, hello: wire.Hello) -> None:
        problem = self.node._hello_problem(hello)
        if problem is not None:
            if self.direction == OUTGOING:
                self.fail(problem)
            else:
                self._write(wire.control_line(wire.REFUSE, problem))
                self.state = DONE
                self.transport.close()
            return
        if self.direction == INCOMING:
            self._write(wire.hello_line(self.node.port, self.node.node_id))
        self._establish(hello)

    def fail(self, reason: str) -> None:
        """An outgoing connection did not work out: close it and report why."""
        self.state = DONE
        if self.transport is not None:
            self.transport.abort()
        self._report_failure(reason)

    def _report_failure(self, reason: str) -> None:
        if self.done is None:
            return  # already reported
        done, self.done = self.done, None
        host, port = self.target
        self.node._observer.connect_failed(host, port, reason)
        done(False)

    # -- receiving --------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.last_received = self.node._reactor.time()
        overflows = self.codec.overflows
        items = self.codec.feed(data)
        if (self.state == OPEN and self.codec.overflows == overflows
                and not (self.info.speaks_protocol and "\x01" in "".join(items))):
            # The hot path: plain lines from an open connection, shown as a batch.
            texts = items if all(items) else [text for text in items if text]
            if texts:
                self.node._observer.messages_received(self.info, texts)
        else:
            self._each_line(items)
        self._maybe_arm_raw_flush()

    def _each_line(self, items: list) -> None:
        for item in items:
            if self.state == DONE:
                return
            if isinstance(item, LineTooLong):
                if self.state == HANDSHAKE:
                    self._establish(None)
                self.node._observer.line_too_long(self.info, item.nbytes,
                                                  self.codec.max_line_bytes)
            elif self.state == HANDSHAKE:
                self._handshake_line(item)
            else:
                self._line(item)

    def _line(self, line: str) -> None:
        if self.info.speaks_protocol and wire.is_control(line):
            verb, _ = wire.split_control(line)
            if verb == wire.BYE:
                self.close_reason = LEFT
            return  # PING proves life by arriving; unknown verbs are ignored
        if line:  # an empty line is not a message
            self.node._observer.messages_received(self.info, [line])

    def _maybe_arm_raw_flush(self) -> None:
        if (self.state == OPEN and not self.info.speaks_protocol and self.timer is None
                and self.codec.pending_bytes):
            self.timer = self.node._reactor.call_later(self.node.options.raw_flush_s,
                                                       self._raw_flush)

    def _raw_flush(self) -> None:
        """Show a raw peer's unterminated text once it has been quiet a moment."""
        self.timer = None
        if self.state != OPEN:
            return
        quiet = self.node._reactor.time() - self.last_received
        wait = self.node.options.raw_flush_s - quiet
        if wait > 0.01:
            self.timer = self.node._reactor.call_later(wait, self._raw_flush)
            return
        text = self.codec.maybe_take_partial()
        if text is not None:
            self._line(text)

    def eof_received(self) -> None:
        if self.state == OPEN and not self.info.speaks_protocol:
            text = self.codec.maybe_take_partial()
            if text is not None:
                self._line(text)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        state, self.state = self.state, DONE
        for _, done in self.waiting_sends:
            done(False)
        self.waiting_sends.clear()
        if state == HANDSHAKE and self.direction == OUTGOING:
            self._report_failure(describe_error(exc) if exc else
                                 "the other side closed the connection during the handshake")
        reason = self.close_reason or (RESET if exc is not None else CLOSED)
        detail = self.close_detail or (describe_error(exc) if exc is not None else "")
        self.node._lost(self, reason, detail)

    # -- sending ------------------------------------------------------------------------------

    def _write(self, line: str) -> None:
        self.last_sent = self.node._reactor.time()
        self.transport.write(LineCodec.encode(line))

    def send_line(self, text: str, done: Callable[[bool], None]) -> None:
        if self.waiting_sends or self.transport.write_paused:
            self.waiting_sends.append((text, done))
            return
        self._write(text)
        done(True)

    def pause_writing(self) -> None:
        pass  # send_line looks at transport.write_paused

    def resume_writing(self) -> None:
        while self.waiting_sends and not self.transport.write_paused and self.state == OPEN:
            text, done = self.waiting_sends.popleft()
            self._write(text)
            done(True)

    def check(self, now: float, heartbeat_s: float, send_timeout_s: float) -> None:
        """Called about once a second for open connections."""
        transport = self.transport
        if (transport.get_write_buffer_size()
                and now - transport.last_write_progress > send_timeout_s):
            lost = transport.count_buffered(b"\n") + len(self.waiting_sends)
            self._drop(STALLED, f"it read nothing for {send_timeout_s:g} s; "
                                f"{lost} queued message(s) not sent")
            return
        if not self.info.speaks_protocol:
            return
        silent = now - self.last_received
        if silent > HEARTBEAT_MISSES * heartbeat_s and not self.node.reading_paused:
            self._drop(TIMED_OUT, f"no sign of life for {silent:.1f} s")
        elif now - self.last_sent >= heartbeat_s and not transport.write_paused:
            self._write(wire.control_line(wire.PING))

    def _drop(self, reason: str, detail: str) -> None:
        self.close_reason = reason
        self.close_detail = detail
        self.transport.abort()

    # -- closing by us ----------------------------------------------------------------------

    def close_by_us(self) -> None:
        """``terminate``: flush and close; the node already forgot this peer."""
        self.state = DONE
        for _, done in self.waiting_sends:
            done(False)
        self.waiting_sends.clear()
        self.transport.close()

    def say_goodbye(self) -> None:
        """``exit``: everything queued goes out, then BYE, then close."""
        while self.waiting_sends:
            text, done = self.waiting_sends.popleft()
            self._write(text)
            done(True)
        if self.info.speaks_protocol:
            self._write(wire.control_line(wire.BYE))
        self.transport.close()

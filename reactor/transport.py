"""Non-blocking TCP streams: the transport between a socket and a protocol.

Writing follows one rule: want write only while there is something to write.
``write()`` appends to a per-connection buffer, and at the end of the loop
turn the transport tries one ``send`` of all of it; whatever the kernel does
not take stays buffered with write interest on, and the writable handler
drains it and turns write interest off again. Interest is *computed*
from state in ``_update_interest`` and the selector is only touched when it
changes. ``sendall`` is never used (on a non-blocking socket it cannot say how
much it sent).

Flow control is asyncio's: above the high-water mark the protocol is told
``pause_writing()``, at or below the low-water mark ``resume_writing()``. The
buffer itself has no hard cap here: the layer above stops writing while
paused, which is what keeps memory bounded.
"""

from __future__ import annotations

import errno
import socket
from typing import Callable

from .loop import EVENT_READ, EVENT_WRITE, Reactor
from .netutil import host_of, sockaddr_for
from .protocol import Protocol

READ_CHUNK_BYTES = 65536          # one bounded recv per readiness event
WRITE_HIGH_WATER_BYTES = 64 * 1024
WRITE_LOW_WATER_BYTES = 16 * 1024

# Errors that mean "the peer went away", reported as a lost connection rather
# than as a failure of ours.
_PEER_GONE = (ConnectionError, TimeoutError)


class StreamTransport:
    """A ``reactor.protocol.Transport`` over a connected stream socket."""

    can_write_eof = True          # write_eof() is a real half-close: SHUT_WR, reading goes on

    __slots__ = ("_reactor", "_sock", "_fd", "_protocol", "_buffer", "_head", "_reading",
                 "_closing", "closed", "_paused_writing", "high_water", "low_water",
                 "_flush_pending", "_eof_pending", "dropped_bytes",
                 "last_write_progress", "peername")

    can_write_eof = True     # TCP can half-close: write_eof() sends FIN and reads on

    def __init__(self, reactor: Reactor, sock: socket.socket, protocol: Protocol,
                 high_water: int = WRITE_HIGH_WATER_BYTES,
                 low_water: int = WRITE_LOW_WATER_BYTES) -> None:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reactor = reactor
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._buffer = bytearray()
        # The one write of this turn into an empty buffer, kept as given: sent from
        # there at the end of the turn, and only what the kernel leaves is copied.
        self._head: bytes | None = None
        self._reading = True
        self._closing = False
        self.closed = False
        self._paused_writing = False
        self._flush_pending = False
        self._eof_pending = False     # write_eof() asked: shut our side once drained
        self.dropped_bytes = 0        # what abort() threw away unsent
        self.high_water = high_water
        self.low_water = low_water
        self.last_write_progress = reactor.time()
        self.peername = _address(sock.getpeername)
        self._update_interest()
        protocol.connection_made(self)

    def set_protocol(self, protocol: Protocol) -> None:
        """Hand the connection to another protocol from now on.

        A TLS layer uses it to take over a connection mid-stream, after a
        plaintext prefix (``reactor.tls.start_tls``).
        """
        self._protocol = protocol

    # -- state ------------------------------------------------------------------

    def _update_interest(self) -> None:
        if self.closed:
            return
        events = 0
        if self._reading and not self._closing:
            events |= EVENT_READ
        if self._buffer:
            events |= EVENT_WRITE
        self._reactor.set_handler(self._fd, self, events)

    def get_write_buffer_size(self) -> int:
        head = self._head
        return len(self._buffer) if head is None else len(head)

    def _unhead(self) -> None:
        """From now on everything is in ``_buffer`` (a second write, a close ...)."""
        if self._head is not None:
            self._buffer += self._head
            self._head = None

    # -- reading ----------------------------------------------------------------

    def pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._update_interest()

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            self._update_interest()

    def on_readable(self) -> None:
        try:
            data = self._sock.recv(READ_CHUNK_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._force_close(exc)
            return
        if data:
            self._protocol.data_received(data)
            return
        # EOF (or a half-close): the peer has nothing more to say. We do not
        # keep half-open chat connections, so finish writing and close.
        self._protocol.eof_received()
        self.close()

    # -- writing ----------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue ``data``; it is sent at the end of this loop turn, with the rest.

        Everything written to one connection during a turn leaves in one
        ``send`` (a script of many sends costs one system call per turn, not
        one per message); what the kernel does not take waits for writability.
        """
        if self._closing or self.closed or self._eof_pending or not data:
            return
        if not self._buffer and not self._flush_pending:
            self._flush_pending = True
            self.last_write_progress = self._reactor.time()
            self._reactor.call_at_end_of_turn(self._flush)
            self._head = bytes(data)       # no copy for bytes (the common case)
        else:
            self._unhead()
            self._buffer += data
        self._maybe_pause_protocol()

    def _flush(self) -> None:
        self._flush_pending = False
        head, self._head = self._head, None
        if self.closed:
            return
        if head is None:
            if self._buffer:
                self.on_writable()
            return
        # One chunk written into an empty buffer this turn (a fan-out writes the same
        # bytes to many connections): send it as it is, copy only what is left over.
        try:
            sent = self._sock.send(head)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._buffer += head
            self._force_close(exc)
            return
        if sent:
            self.last_write_progress = self._reactor.time()
        if sent < len(head):
            self._buffer += memoryview(head)[sent:]
        self._after_send()

    def on_writable(self) -> None:
        self._unhead()
        if self._buffer:
            try:
                sent = self._sock.send(self._buffer)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._force_close(exc)
                return
            if sent:
                self.last_write_progress = self._reactor.time()
                del self._buffer[:sent]
        self._after_send()

    def _after_send(self) -> None:
        self._maybe_resume_protocol()
        if self._closing and not self._buffer:
            self._finish(None)
        elif self._eof_pending and not self._buffer:
            self._shutdown_write()
            self._update_interest()
        else:
            self._update_interest()   # write interest stays on while anything is left

    def _maybe_pause_protocol(self) -> None:
        if not self._paused_writing and self.get_write_buffer_size() > self.high_water:
            self._paused_writing = True
            self._protocol.pause_writing()

    def _maybe_resume_protocol(self) -> None:
        if self._paused_writing and self.get_write_buffer_size() <= self.low_water:
            self._paused_writing = False
            self._protocol.resume_writing()

    @property
    def write_paused(self) -> bool:
        return self._paused_writing

    # -- closing ----------------------------------------------------------------

    def write_eof(self) -> None:
        """Half-close: send what is buffered, then end our direction; keep reading.

        The other side sees EOF and hangs up in turn, and its last bytes are
        still read (closing with unread input would reset the connection and
        could destroy what we sent before the other side read it).
        """
        if self._closing or self.closed or self._eof_pending:
            return
        self._eof_pending = True
        self._unhead()
        if not self._buffer:
            self._shutdown_write()

    def _shutdown_write(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass   # already gone: the read side will tell

    def close(self) -> None:
        """Stop reading, send what is buffered, then close. Idempotent."""
        if self._closing or self.closed:
            return
        self._closing = True
        self._unhead()
        if self._buffer:
            self._update_interest()  # keep write interest only
        else:
            self._finish(None)

    def abort(self, exc: BaseException | None = None) -> None:
        """Close now, dropping anything still buffered."""
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self.closed:
            return
        self._unhead()
        self.dropped_bytes = len(self._buffer)
        self._buffer.clear()
        self._closing = True
        self._finish(exc)

    def _finish(self, exc: BaseException | None) -> None:
        # Unregister before close: a closed fd number is reused by the next
        # socket, and a stale registration would then receive its events.
        self.closed = True
        self._reactor.remove_handler(self._fd)
        try:
            self._sock.close()
        except OSError:
            pass
        # Deferred, so a protocol never sees connection_lost from inside its
        # own write() call.
        self._reactor.call_soon(self._protocol.connection_lost, exc)


class Connector:
    """One non-blocking outgoing TCP connect, with a timeout.

    Calls exactly one of ``on_connected(sock)`` or ``on_failed(exc)``, always
    from the loop (never from inside ``__init__``).
    """

    __slots__ = ("_reactor", "_sock", "_on_connected", "_on_failed", "_timer", "closed")

    def __init__(self, reactor: Reactor, address: tuple[str, int], timeout: float,
                 on_connected: Callable[[socket.socket], None],
                 on_failed: Callable[[OSError], None]) -> None:
        self._reactor = reactor
        self._on_connected = on_connected
        self._on_failed = on_failed
        self.closed = False
        self._timer = None
        family, sockaddr = sockaddr_for(*address)     # numeric: never a lookup
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setblocking(False)
        err = self._sock.connect_ex(sockaddr)
        if err in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EINTR):
            reactor.set_handler(self._sock.fileno(), self, EVENT_WRITE)
            self._timer = reactor.call_later(timeout, self._timed_out, timeout)
        else:
            self._sock.close()
            self.closed = True
            reactor.call_soon(on_failed, OSError(err, _strerror(err)))

    def on_writable(self) -> None:
        err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err in (errno.EINPROGRESS, errno.EALREADY):
            return
        sock = self._detach()
        if err:
            sock.close()
            self._on_failed(OSError(err, _strerror(err)))
        else:
            self._on_connected(sock)

    def _timed_out(self, timeout: float) -> None:
        self._timer = None
        if not self.closed:
            self._detach().close()
            self._on_failed(TimeoutError(errno.ETIMEDOUT, f"no answer after {timeout:g} s"))

    def cancel(self) -> None:
        if not self.closed:
            self._detach().close()

    abort = cancel

    def _detach(self) -> socket.socket:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._reactor.remove_handler(self._sock.fileno())
        return self._sock


def _strerror(err: int) -> str:
    import os
    return os.strerror(err)


def _address(get: Callable[[], tuple]) -> tuple[str, int]:
    try:
        addr = get()
    except OSError:
        return ("?", 0)
    return (host_of(addr), addr[1]) if isinstance(addr, tuple) else (str(addr), 0)

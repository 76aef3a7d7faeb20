"""TLS as a layer between a transport and a protocol, on the loop, never blocking.

We write no cryptography: OpenSSL does it, through ``ssl.SSLObject`` on two
``ssl.MemoryBIO`` buffers (the shape of asyncio's ``sslproto.py``). The layer
is a *protocol* to the transport below (ciphertext in and out) and a
*transport* to the protocol above: both sides are ``reactor.protocol.Transport``,
so a connection can sit on either without knowing which, and the layer uses
nothing of the one below but that interface (no ``hasattr`` probing).

Half-close: none. TLS 1.3 would allow one (our close_notify, then keep reading),
but this layer reads nothing after its own close_notify, as ``close()`` always
did; so ``can_write_eof`` is False and ``write_eof()`` is ``close()``: what is
written is encrypted and sent, then close_notify, then the connection closes.
It does not raise: a caller that must end its direction gets the nearest thing
TLS here offers, and one that needs to keep reading asks ``can_write_eof`` first.

Why the reads loop until OpenSSL says "want read": one TCP chunk may hold
several TLS records, and records already inside the SSL object never make the
socket readable again, so a plaintext left there would wait for the next
packet. Each chunk is drained completely and handed up in one call.

What the protocol above sees::

    [connection_made(tls)]  after the handshake (the peer's certificate is
                            verified by then; see ``peer_certificate``)
    data_received(plaintext)* -> [eof_received] (the peer's close_notify)
    connection_lost(exc)    exactly once, also when the handshake failed (then
                            without connection_made): ``None`` after an orderly
                            close, an ``ssl.SSLError`` for a bad record or a
                            stream cut without close_notify (``SSLEOFError``),
                            ``TLSHandshakeTimeout`` when the handshake stalls.

TLS 1.3 caveat: a client's handshake completes before the server has checked
the client's certificate, so a server that refuses it is seen by the client as
an ``SSLError`` *after* ``connection_made``, on the next read.

Writes made during a loop turn are encrypted together at the end of the turn
(one ``SSLObject.write``, records of up to 16 KiB, one ``send`` below).
Flow control counts the plaintext not yet encrypted plus the ciphertext the
transport holds; the transport's own water marks are set so that it tells us
of every crossing of our low-water mark, which is what lets us resume.
"""

from __future__ import annotations

import enum
import ssl
from typing import Any

from .loop import Reactor
from .protocol import Protocol, Transport

HANDSHAKE_TIMEOUT_S = 10.0
FATAL_LINGER_S = 1.0             # time a fatal alert gets to leave before we abort
READ_PLAINTEXT_BYTES = 256 * 1024
WRITE_HIGH_WATER_BYTES = 64 * 1024
WRITE_LOW_WATER_BYTES = 16 * 1024


class TLSState(enum.Enum):
    HANDSHAKING = "handshaking"
    OPEN = "open"
    CLOSING = "closing"          # our close_notify is queued; the transport flushes and closes
    CLOSED = "closed"


class TLSHandshakeTimeout(TimeoutError):
    """The TLS handshake did not finish in time."""


class TLSTruncated(ssl.SSLEOFError):
    """The stream ended inside a record: what that record held is lost (and not shown)."""


class TLSLayer(Protocol):
    can_write_eof = False    # TLS cannot half-close: close() sends close_notify and reads no more

    def __init__(self, reactor: Reactor, context: ssl.SSLContext, protocol: Protocol, *,
                 server_side: bool, server_hostname: str | None = None,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT_S,
                 local_certificate: bytes | None = None,
                 high_water: int = WRITE_HIGH_WATER_BYTES,
                 low_water: int = WRITE_LOW_WATER_BYTES) -> None:
        self._reactor = reactor
        self._protocol = protocol
        self._dropped_plain = 0
        self._tcp_eof = False            # TCP's end has come (close_notify must precede it)
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._sslobj = context.wrap_bio(self._incoming, self._outgoing,
                                        server_side=server_side,
                                        server_hostname=server_hostname)
        self.server_side = server_side
        self.state = TLSState.HANDSHAKING
        self.high_water = high_water
        self.low_water = low_water
        self.peer_certificate: bytes | None = None      # DER, once the handshake is done
        self.local_certificate = local_certificate      # DER, as given (3.11 cannot read it back)
        self._transport: Transport | None = None
        self._plain = bytearray()        # written above, not yet encrypted
        self._flush_pending = False
        self._reading = True
        self._paused_writing = False
        self._close_requested = False
        self._peer_closed = False        # its close_notify came: the peer is done
        self._error: BaseException | None = None
        self._lost = False
        self._handshake_timeout = handshake_timeout
        self._timer = None
        self._linger = None

    # == the protocol side (below) ===========================================

    def connection_made(self, transport: Transport) -> None:
        self._transport = transport
        # Make the transport report every crossing of our low-water mark (see
        # the module docstring); it never holds data back because of them.
        transport.high_water = transport.low_water = self.low_water
        # Taken over while paused (start_tls): the transport will now tell us,
        # not the protocol, when it drains; so we owe the protocol the resume.
        self._paused_writing = transport.write_paused
        self._timer = self._reactor.call_later(self._handshake_timeout, self._timed_out)
        self._do_handshake()

    def data_received(self, data: bytes) -> None:
        if self.state is TLSState.CLOSED or self.state is TLSState.CLOSING:
            return
        self._incoming.write(data)
        if self.state is TLSState.HANDSHAKING:
            self._do_handshake()
        elif self._reading:
            self._do_read()

    def eof_received(self) -> None:
        # TCP FIN. After the peer's close_notify we are CLOSING already; before
        # it, OpenSSL turns the missing close_notify into SSLEOFError.
        if self.state is TLSState.HANDSHAKING:
            self._incoming.write_eof()
            self._do_handshake()
        elif self.state is TLSState.OPEN:
            cut = self._incoming.pending > 0     # part of a record came, then the end
            self._tcp_eof = True
            self._incoming.write_eof()
            self._do_read()
            if cut and self.state is TLSState.OPEN:
                self._fatal(TLSTruncated("the stream was cut in the middle of a record"),
                            alert=False)
        if self.state is TLSState.HANDSHAKING or self.state is TLSState.OPEN:
            self._fatal(ssl.SSLEOFError("the stream ended without close_notify"), alert=False)

    def connection_lost(self, exc: BaseException | None) -> None:
        was = self.state
        self.state = TLSState.CLOSED
        self._cancel_timers()
        self._plain.clear()
        if self._lost:
            return
        self._lost = True
        error = self._error or exc
        if self._peer_closed and isinstance(error, ConnectionError):
            error = None     # our close_notify met a peer that had closed: still orderly
        if error is None and was is TLSState.HANDSHAKING:
            error = ConnectionResetError("the connection closed during the TLS handshake")
        self._protocol.connection_lost(error)

    def pause_writing(self) -> None:
        self._update_writing()

    def resume_writing(self) -> None:
        self._update_writing()

    # == the transport side (above) ==========================================

    can_write_eof = False        # see the module docstring: write_eof() is close()

    def set_protocol(self, protocol: Protocol) -> None:
        self._protocol = protocol

    closed = property(lambda self: self.state is TLSState.CLOSED)
    is_closing = property(lambda self: self._close_requested or
                          self.state in (TLSState.CLOSING, TLSState.CLOSED))
    write_paused = property(lambda self: self._paused_writing)
    peername = property(lambda self: self._transport.peername)
    last_write_progress = property(lambda self: self._transport.last_write_progress)

    def get_write_buffer_size(self) -> int:
        below = self._transport.get_write_buffer_size() if self._transport is not None else 0
        return len(self._plain) + below

    def getpeercert(self, binary_form: bool = True) -> Any:
        return self._sslobj.getpeercert(binary_form)

    def version(self) -> str | None:
        """``"TLSv1.3"`` once the handshake is done."""
        return self._sslobj.version()

    def write(self, data: bytes) -> None:
        """Queue plaintext; it is encrypted and sent at the end of this turn."""
        if not data or self.is_closing:
            return
        self._plain += data
        self._schedule_flush()
        self._update_writing()

    def pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            if self.state is TLSState.OPEN:
                self._transport.pause_reading()

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            if self.state is TLSState.OPEN:
                self._transport.resume_reading()
                # Records received while paused wait in the incoming buffer and
                # will not wake select: decrypt them from the loop.
                self._reactor.call_soon(self._read_if_open)

    def write_eof(self) -> None:
        """No half-close over TLS here (``can_write_eof`` is False): this is ``close()``,
        our close_notify after what is written, and nothing is read after it."""
        self.close()

    def close(self) -> None:
        """Send what is written, then close_notify, then close. Idempotent."""
        if self.state is TLSState.HANDSHAKING:
            self._close_requested = True    # done when the handshake is
        elif self.state is TLSState.OPEN:
            self._shutdown()

    @property
    def dropped_bytes(self) -> int:
        """What abort() threw away: plaintext not yet encrypted, and ciphertext below."""
        below = self._transport.dropped_bytes if self._transport is not None else 0
        return self._dropped_plain + below

    def abort(self, exc: BaseException | None = None) -> None:
        """Close now, dropping what is buffered."""
        if self.state is TLSState.CLOSED:
            return
        self.state = TLSState.CLOSED
        self._dropped_plain = len(self._plain)
        self._plain.clear()
        self._cancel_timers()
        self._transport.abort(exc)

    # == inside ==============================================================

    def _do_handshake(self) -> None:
        try:
            self._sslobj.do_handshake()
        except ssl.SSLWantReadError:
            self._push_outgoing()
            return
        except ssl.SSLError as exc:
            self._push_outgoing()        # the alert tells the peer why
            self._fatal(exc)
            return
        self._push_outgoing()
        self._cancel_timers()
        self.state = TLSState.OPEN
        self.peer_certificate = self._sslobj.getpeercert(binary_form=True)
        if self._close_requested:
            self._shutdown()
            return
        if not self._reading:
            self._transport.pause_reading()
        self._protocol.connection_made(self)
        if self.state is TLSState.OPEN:
            self._schedule_flush()
            if self._reading:
                self._do_read()      # data may have come with the last flight

    def _read_if_open(self) -> None:
        if self.state is TLSState.OPEN and self._reading:
            self._do_read()

    def _do_read(self) -> None:
        chunks = []
        error = None
        eof = False
        try:
            while True:
                chunk = self._sslobj.read(READ_PLAINTEXT_BYTES)
                if not chunk:
                    eof = True           # close_notify
                    break
                chunks.append(chunk)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as exc:      # a bad record: nothing of it was returned
            error = exc
        self._push_outgoing()            # reading can produce records (alerts, key updates)
        self._schedule_flush()           # a write that waited for this read (TLS 1.2)
        if chunks:
            self._protocol.data_received(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if self.state is not TLSState.OPEN:
            return
        if error is not None:
            self._fatal(error)
        elif eof and self._tcp_eof:
            # The end of the stream read as the end of TLS: some Pythons (3.9) say so for
            # a stream that simply stopped. A real close_notify comes before TCP's end.
            self._fatal(ssl.SSLEOFError("the stream ended without close_notify"), alert=False)
        elif eof:
            self._peer_closed = True
            self._protocol.eof_received()
            if self.state is TLSState.OPEN:
                self._shutdown()

    def _schedule_flush(self) -> None:
        if self._plain and not self._flush_pending:
            self._flush_pending = True
            self._reactor.call_at_end_of_turn(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        if self.state is TLSState.OPEN and self._plain:
            if self._encrypt_pending():
                self._push_outgoing()
                self._update_writing()

    def _encrypt_pending(self) -> bool:
        done = 0
        view = memoryview(self._plain)
        try:
            while done < len(view):
                done += self._sslobj.write(view[done:])
        except ssl.SSLWantReadError:
            pass                         # renegotiation (TLS 1.2): the rest waits for a read
        except ssl.SSLError as exc:
            view.release()
            self._fatal(exc)
            return False
        view.release()
        del self._plain[:done]
        return True

    def _push_outgoing(self) -> None:
        if self._outgoing.pending:
            self._transport.write(self._outgoing.read())

    def _shutdown(self) -> None:
        self.state = TLSState.CLOSING
        if self._plain and not self._encrypt_pending():
            return
        try:
            self._sslobj.unwrap()        # queues our close_notify
        except ssl.SSLWantReadError:
            pass                         # we do not wait for the peer's
        except ssl.SSLError:
            pass                         # the peer is gone already: just close
        self._push_outgoing()
        self._transport.close()

    def _fatal(self, exc: BaseException, alert: bool = True) -> None:
        if self.state is TLSState.CLOSED:
            return
        self.state = TLSState.CLOSED
        self._error = exc
        self._plain.clear()
        self._cancel_timers()
        if alert:
            # Let the alert OpenSSL queued reach the peer, but not for long.
            self._transport.close()
            self._linger = self._reactor.call_later(FATAL_LINGER_S, self._transport.abort, exc)
        else:
            self._transport.abort(exc)

    def _timed_out(self) -> None:
        self._timer = None
        if self.state is TLSState.HANDSHAKING:
            self._fatal(TLSHandshakeTimeout(
                f"TLS handshake not finished after {self._handshake_timeout:g} s"), alert=False)

    def _update_writing(self) -> None:
        size = self.get_write_buffer_size()
        if not self._paused_writing and size > self.high_water:
            self._paused_writing = True
            self._protocol.pause_writing()
        elif self._paused_writing and size <= self.low_water:
            self._paused_writing = False
            self._protocol.resume_writing()

    def _cancel_timers(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None


def start_tls(reactor: Reactor, transport: Transport, protocol: Protocol, context: ssl.SSLContext,
              *, server_side: bool, server_hostname: str | None = None,
              initial_data: bytes = b"", handshake_timeout: float = HANDSHAKE_TIMEOUT_S,
              local_certificate: bytes | None = None) -> TLSLayer:
    """Switch a live transport (a ``StreamTransport``) to TLS; return the layer to write to.

    The layer takes the transport's protocol slot; ``initial_data`` is what
    arrived after the switch point (already read from the socket) and is fed
    in as ciphertext. ``protocol.connection_made(layer)`` follows the
    handshake. It never happens inside this call: a handshake always needs at
    least one more flight from the peer than what can already be here.
    """
    layer = TLSLayer(reactor, context, protocol, server_side=server_side,
                     server_hostname=server_hostname, handshake_timeout=handshake_timeout,
                     local_certificate=local_certificate)
    transport.set_protocol(layer)
    layer.connection_made(transport)
    if initial_data:
        layer.data_received(initial_data)
    return layer

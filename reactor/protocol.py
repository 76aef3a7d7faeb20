"""The contract between a transport and the protocol above it.

A protocol turns bytes into meaning and never touches a socket: it reads
what the transport hands it and writes through ``self.transport``. The
transport guarantees the order of calls:

    connection_made -> data_received* -> [eof_received] -> connection_lost

``connection_lost`` is called exactly once, from the reactor's ready queue,
never from inside a ``transport.write()`` the protocol itself made.

``Transport`` is the other half: everything a protocol may call on the
transport it is handed. Two classes implement it, ``StreamTransport`` (TCP,
``reactor.transport``) and ``TLSLayer`` (TLS over a transport, ``reactor.tls``);
``tests/test_interfaces.py`` checks both against it by name and shape, and
that everything ``network/`` calls on a transport is in it. What differs
between them is said, never probed with ``hasattr``: ``can_write_eof`` tells
whether ``write_eof()`` is a real half-close.
"""

from __future__ import annotations

import typing


class Transport(typing.Protocol):
    """What a protocol may call on its transport (and a layer such as TLS on the one below).

    Writing never blocks and never fails at the call: ``write()`` queues, the bytes
    leave at the end of the loop turn or when the socket is writable, and a failure is
    reported once, by ``connection_lost``.
    """

    #: True when ``write_eof()`` is a real half-close: our direction ends, and what the
    #: peer still sends is read and handed up. False when it cannot be: then
    #: ``write_eof()`` ends the whole connection, as ``close()`` does (TLS, see there).
    can_write_eof: bool

    #: Flow control: above ``high_water`` bytes buffered the protocol is told
    #: ``pause_writing()``, at or below ``low_water`` ``resume_writing()``. A layer that
    #: takes the transport over (TLS) may set them.
    high_water: int
    low_water: int

    @property
    def closed(self) -> bool:
        """Finished: nothing more is sent or handed up; ``connection_lost`` follows (or came)."""

    @property
    def write_paused(self) -> bool:
        """Above the high-water mark now (``pause_writing`` was called, no resume yet)."""

    @property
    def peername(self) -> tuple[str, int]:
        """The peer's address, read when the connection was made (``("?", 0)`` if unknown)."""

    @property
    def dropped_bytes(self) -> int:
        """What ``abort()`` (or a failure) threw away unsent; 0 before that."""

    @property
    def last_write_progress(self) -> float:
        """The loop's time of the last write into an empty buffer or of the last send
        that moved bytes (a stalled peer shows as an old value)."""

    def write(self, data: bytes) -> None:
        """Queue ``data``; ignored once closing or after ``write_eof()``."""

    def write_eof(self) -> None:
        """Send what is queued, then end our direction (see ``can_write_eof``)."""

    def close(self) -> None:
        """Send what is queued, then close (reading stops now). Idempotent."""

    def abort(self, exc: BaseException | None = None) -> None:
        """Close now, dropping what is queued; ``exc`` goes to ``connection_lost``."""

    def pause_reading(self) -> None:
        """Hand up no more data until ``resume_reading()``."""

    def resume_reading(self) -> None:
        """Hand up data again (also what arrived while paused)."""

    def get_write_buffer_size(self) -> int:
        """Bytes written and not yet handed to the kernel (for TLS: plaintext not yet
        encrypted plus the ciphertext below)."""

    def set_protocol(self, protocol: "Protocol") -> None:
        """Hand the connection to another protocol from now on (``start_tls`` does)."""


class Protocol:
    transport: Transport | None = None

    def connection_made(self, transport: Transport) -> None:
        """The transport is ready; keep it to write and close."""
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Some bytes arrived: any number, split anywhere."""

    def eof_received(self) -> None:
        """The other end will send nothing more (it closed or half-closed).

        The transport closes itself after this call (we do not keep
        half-open connections: a chat peer that stops talking has left).
        """

    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection is gone: ``exc`` is ``None`` for a clean close."""

    def pause_writing(self) -> None:
        """The write buffer went above the high-water mark."""

    def resume_writing(self) -> None:
        """The write buffer drained to the low-water mark."""

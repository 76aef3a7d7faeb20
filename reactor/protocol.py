"""The contract between a transport and the protocol above it.

A protocol turns bytes into meaning and never touches a socket: it reads
what the transport hands it and writes through ``self.transport``. The
transport guarantees the order of calls:

    connection_made -> data_received* -> [eof_received] -> connection_lost

``connection_lost`` is called exactly once, from the reactor's ready queue,
never from inside a ``transport.write()`` the protocol itself made.
"""

from __future__ import annotations


class Protocol:
    transport = None

    def connection_made(self, transport) -> None:
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

"""The listening socket: accepts in bounded batches, survives fd exhaustion.

One readiness event accepts at most ``ACCEPT_BATCH`` connections, so a
connection storm cannot starve stdin or the peers already connected. When
``accept`` fails for lack of file descriptors or memory (EMFILE, ENFILE,
ENOBUFS, ENOMEM) the pending connection stays in the kernel's queue and the
listener stays readable; retrying at once would spin a core. Like asyncio, we
stop watching the listener, say so once, and retry after ``ACCEPT_RETRY_S``.
"""

from __future__ import annotations

import errno
import socket
from typing import Callable

from .loop import EVENT_READ, Reactor

ACCEPT_BATCH = 64
ACCEPT_RETRY_S = 1.0
LISTEN_BACKLOG = 128

_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def open_listening_socket(host: str, port: int) -> socket.socket:
    """Bind and listen; raises ``OSError`` (e.g. EADDRINUSE) for the caller to word."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # Lets a restarted peer bind while old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Listener:
    """Watches a listening socket and hands every accepted socket on."""

    __slots__ = ("_reactor", "_sock", "_on_accept", "_on_starved", "closed", "_retry")

    def __init__(self, reactor: Reactor, sock: socket.socket,
                 on_accept: Callable[[socket.socket, tuple], None],
                 on_starved: Callable[[OSError, float], None]) -> None:
        self._reactor = reactor
        self._sock = sock
        self._on_accept = on_accept
        self._on_starved = on_starved
        self.closed = False
        self._retry = None
        reactor.set_handler(sock.fileno(), self, EVENT_READ)

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1]

    @property
    def host(self) -> str:
        return self._sock.getsockname()[0]

    def on_readable(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, addr = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while queued: nothing to do
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    self._starve(exc)
                    return
                raise
            self._on_accept(conn, addr)

    def _starve(self, exc: OSError) -> None:
        self._reactor.remove_handler(self._sock.fileno())
        self._retry = self._reactor.call_later(ACCEPT_RETRY_S, self._resume)
        self._on_starved(exc, ACCEPT_RETRY_S)

    def _resume(self) -> None:
        self._retry = None
        if not self.closed:
            self._reactor.set_handler(self._sock.fileno(), self, EVENT_READ)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._retry is not None:
            self._retry.cancel()
        self._reactor.remove_handler(self._sock.fileno())
        self._sock.close()

    def abort(self, exc: BaseException | None = None) -> None:
        self.close()

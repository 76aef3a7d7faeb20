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
from .netutil import host_of, sockaddr_for

ACCEPT_BATCH = 64
ACCEPT_RETRY_S = 1.0
LISTEN_BACKLOG = 128

_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def open_listening_sockets(host: str | None, port: int) -> list[socket.socket]:
    """Bind and listen; raises ``OSError`` (e.g. EADDRINUSE) for the caller to word.

    ``host`` ``None`` means every address, IPv4 and IPv6: one IPv6 socket that
    takes IPv4 too (``IPV6_V6ONLY`` off) where the system allows it; else an
    IPv6 and an IPv4 socket on the same port; on a machine without IPv6, the
    IPv4 socket alone, as before. A numeric ``host`` gets the one socket of its
    family. The first socket's port is the port (port 0 picks one for both).
    """
    if host is not None:
        return [_bound(host, port)]
    if not socket.has_ipv6:
        return [_bound("0.0.0.0", port)]
    try:
        sock = _bound("::", port, dual_stack=True)
    except OSError as exc:
        if exc.errno not in _NO_IPV6:
            raise
        return [_bound("0.0.0.0", port)]
    if sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY):
        try:        # the system would not mix the families: an IPv4 socket beside it
            return [sock, _bound("0.0.0.0", sock.getsockname()[1])]
        except BaseException:
            sock.close()
            raise
    return [sock]


_NO_IPV6 = {errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT}


def _bound(host: str, port: int, dual_stack: bool = False) -> socket.socket:
    family, sockaddr = sockaddr_for(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Lets a restarted peer bind while old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            try:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
            except OSError:
                pass          # fixed by the system (OpenBSD): we read back what it is
        sock.bind(sockaddr)
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
        return host_of(self._sock.getsockname())

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

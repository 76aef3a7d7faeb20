"""Our one outgoing connect in flight, from the ``connect`` command until it settles.

The dialer owns the :class:`Attempt`: the TCP connect (a
:class:`~reactor.transport.Connector`), then the connection it became, and the
incoming hellos that wait for it (the peer we dial may be dialling us at the
same moment; see :mod:`network.duplicates`). It decides nothing about peers:
it tells the node when TCP is up or failed, and hands back what waited when
the attempt settles.
"""

from __future__ import annotations

from typing import Callable

from reactor.loop import Reactor
from reactor.transport import Connector


class Attempt:
    __slots__ = ("ip", "port", "peer_id", "done", "connector", "entry", "waiting_hellos", "auto")

    def __init__(self, ip: str, port: int, peer_id: int, done: Callable[[bool], None],
                 auto: bool = False) -> None:
        self.ip = ip
        self.port = port
        self.peer_id = peer_id            # reserved when the command ran
        self.done = done                  # the command's callback: settled, ok or not
        self.connector: Connector | None = None    # the TCP connect, until it completes
        self.entry = None                 # then the connection's entry, until its handshake ends
        self.waiting_hellos: list = []    # entries of incoming hellos that may be this peer
        self.auto = auto                  # we reconnect by ourselves: quiet, and gives way

    def resolved(self) -> bool:
        """Do we know who answered (or that nobody will)?"""
        return self.entry is not None and self.entry.conn.protocol.theirs is not None


class Dialer:
    def __init__(self, reactor: Reactor, timeout_s: float,
                 connected: Callable[["Attempt", object], None],
                 failed: Callable[["Attempt", OSError], None]) -> None:
        self._reactor = reactor
        self._timeout_s = timeout_s
        self._connected = connected
        self._failed = failed
        self.attempt: Attempt | None = None

    def dial(self, ip: str, port: int, peer_id: int, done: Callable[[bool], None],
             auto: bool = False) -> Attempt:
        """Start the TCP connect; raises ``OSError`` when no socket can be had.

        ``auto``: a reconnect of ours (peer id 0: it gets one when established)."""
        attempt = Attempt(ip, port, peer_id, done, auto)
        attempt.connector = Connector(self._reactor, (ip, port), self._timeout_s,
                                      lambda sock: self._tcp_up(attempt, sock),
                                      lambda exc: self._tcp_failed(attempt, exc))
        self.attempt = attempt
        return attempt

    def _tcp_up(self, attempt: Attempt, sock) -> None:
        attempt.connector = None
        self._connected(attempt, sock)

    def _tcp_failed(self, attempt: Attempt, exc: OSError) -> None:
        attempt.connector = None
        self._failed(attempt, exc)

    def became(self, attempt: Attempt, entry) -> None:
        """TCP is up: the attempt is now this connection's handshake."""
        attempt.entry = entry

    def wait_for_it(self, entry) -> None:
        """An incoming hello that may be the peer we dial: decided when we settle."""
        self.attempt.waiting_hellos.append(entry)

    def is_attempt(self, entry) -> bool:
        return self.attempt is not None and self.attempt.entry is entry

    def cancel(self) -> Attempt | None:
        """Stop the TCP connect; the caller closes the connection and settles."""
        attempt = self.attempt
        if attempt is not None and attempt.connector is not None:
            attempt.connector.cancel()
            attempt.connector = None
        return attempt

    def settle(self, attempt: Attempt) -> list | None:
        """The attempt is over: the hellos that waited for it (``None``: already over)."""
        if self.attempt is not attempt:
            return None
        self.attempt = None
        waited, attempt.waiting_hellos = attempt.waiting_hellos, []
        return waited

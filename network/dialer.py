"""Our one outgoing connect in flight, from the ``connect`` command until it settles.

The dialer owns the :class:`Attempt`: the name lookup when the user typed a
host name (:class:`~reactor.resolver.Lookup`, a helper process: the loop
never waits for a resolver), then the TCP connects (a
:class:`~reactor.transport.Connector` per address, tried in the resolver's
order until one answers), then the connection it became, and the incoming
hellos that wait for it (the peer we dial may be dialling us at the same
moment; see :mod:`network.duplicates`).

One deadline covers it all: ``--connect-timeout`` counts from the command,
lookup included, and each address gets an equal share of what is left, so a
name with a dead IPv6 address and a live IPv4 one still connects in time.
Cancelling (Ctrl-C) stops whichever step is running.

It decides nothing about peers: it asks the node which resolved addresses
to try (:meth:`resolved`), tells it when TCP is up or failed, and hands back
what waited when the attempt settles.
"""

from __future__ import annotations

import errno
from typing import Callable

from reactor.loop import Reactor
from reactor.resolver import Lookup
from reactor.transport import Connector

MIN_TRY_S = 0.25        # the least time one of several addresses is given


class Attempt:
    __slots__ = ("host", "ip", "port", "peer_id", "done", "lookup", "connector", "untried",
                 "deadline", "entry", "waiting_hellos", "auto", "expect")

    def __init__(self, host: str, ip: str | None, port: int, peer_id: int,
                 done: Callable[[bool], None], deadline: float, auto: bool = False,
                 expect: bytes | None = None) -> None:
        self.host = host                  # as the user typed it (a name, or the address)
        self.ip = ip                      # the address being tried (None: being looked up)
        self.port = port
        self.peer_id = peer_id            # reserved when the command ran
        self.done = done                  # the command's callback: settled, ok or not
        self.deadline = deadline          # the whole attempt, lookup included
        self.lookup: Lookup | None = None          # the name lookup, until it answers
        self.connector: Connector | None = None    # the TCP connect, until it completes
        self.untried: list[str] = []      # resolved addresses after the one being tried
        self.entry = None                 # then the connection's entry, until its handshake ends
        self.waiting_hellos: list = []    # entries of incoming hellos that may be this peer
        self.auto = auto                  # we reconnect by ourselves: quiet, and gives way
        self.expect = expect              # the identity we dial for (None: whoever answers)

    def resolved(self) -> bool:
        """Do we know who answered (or that nobody will)?"""
        return self.entry is not None and self.entry.conn.protocol.theirs is not None


class Dialer:
    def __init__(self, reactor: Reactor, timeout_s: float,
                 connected: Callable[["Attempt", object], None],
                 failed: Callable[["Attempt", OSError], None],
                 resolved: Callable[["Attempt", list], "list[str] | None"],
                 resolver_argv: list[str] | None = None) -> None:
        """``resolved(attempt, ips)`` returns the addresses to try, in order (``None``:
        the node has settled the attempt itself); ``resolver_argv`` replaces the
        lookup's helper command (tests: a resolver that stalls)."""
        self._reactor = reactor
        self._timeout_s = timeout_s
        self._connected = connected
        self._failed = failed
        self._resolved = resolved
        self._resolver_argv = resolver_argv
        self.attempt: Attempt | None = None

    def dial(self, host: str, ip: str | None, port: int, peer_id: int,
             done: Callable[[bool], None], auto: bool = False,
             expect: bytes | None = None) -> Attempt:
        """Start: a lookup of ``host`` when ``ip`` is ``None``, else the TCP connect.
        Raises ``OSError`` when no socket (or helper) can be had.

        ``auto``: a reconnect of ours (peer id 0: it gets one when established);
        ``expect``: the identity it must prove (the node checks)."""
        attempt = Attempt(host, ip, port, peer_id, done,
                          self._reactor.time() + self._timeout_s, auto, expect)
        if ip is None:
            attempt.lookup = Lookup(self._reactor, host, port, self._timeout_s,
                                    lambda found: self._looked_up(attempt, found),
                                    lambda exc: self._give_up(attempt, exc),
                                    argv=self._resolver_argv)
        else:
            self._connect(attempt, ip)
        self.attempt = attempt
        return attempt

    def _looked_up(self, attempt: Attempt, found: list) -> None:
        attempt.lookup = None
        ips = self._resolved(attempt, [ip for _, ip, _ in found])
        if ips is None or self.attempt is not attempt:
            return
        attempt.untried = list(ips)
        self._next(attempt, OSError(errno.EADDRNOTAVAIL, "no address to try"))

    def _next(self, attempt: Attempt, last: OSError) -> None:
        """Try the next address, or give up with the last error."""
        while attempt.untried:
            if self._reactor.time() >= attempt.deadline:
                break
            try:
                self._connect(attempt, attempt.untried.pop(0))
                return
            except OSError as exc:
                last = exc
        if self._reactor.time() >= attempt.deadline:
            last = TimeoutError()            # worded by _give_up, as every timeout
        self._give_up(attempt, last)

    def _connect(self, attempt: Attempt, ip: str) -> None:
        left = max(attempt.deadline - self._reactor.time(), 0.0)
        share = max(left / (1 + len(attempt.untried)), min(MIN_TRY_S, left))
        attempt.ip = ip
        attempt.connector = Connector(self._reactor, (ip, attempt.port), share,
                                      lambda sock: self._tcp_up(attempt, sock),
                                      lambda exc: self._tcp_failed(attempt, exc))

    def _tcp_up(self, attempt: Attempt, sock) -> None:
        attempt.connector = None
        attempt.untried = []
        self._connected(attempt, sock)

    def _tcp_failed(self, attempt: Attempt, exc: OSError) -> None:
        attempt.connector = None
        if attempt.untried:
            self._next(attempt, exc)
        else:
            self._give_up(attempt, exc)

    def _give_up(self, attempt: Attempt, exc: OSError) -> None:
        attempt.lookup = None
        if isinstance(exc, TimeoutError):   # the whole attempt's timeout, not one share
            exc = TimeoutError(errno.ETIMEDOUT, f"no answer after {self._timeout_s:g} s")
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
        """Stop the lookup or the TCP connect; the caller closes the connection and settles."""
        attempt = self.attempt
        if attempt is not None:
            if attempt.lookup is not None:
                attempt.lookup.cancel()
                attempt.lookup = None
            if attempt.connector is not None:
                attempt.connector.cancel()
                attempt.connector = None
            attempt.untried = []
        return attempt

    def settle(self, attempt: Attempt) -> list | None:
        """The attempt is over: the hellos that waited for it (``None``: already over)."""
        if self.attempt is not attempt:
            return None
        self.attempt = None
        waited, attempt.waiting_hellos = attempt.waiting_hellos, []
        return waited

"""UDP for the loop: one port, IPv4 and IPv6, small datagrams in bounded batches.

A :class:`DatagramEndpoint` is what a local-discovery protocol needs below its
words: a port where anyone on the link can drop a datagram, and a way to send
one to everyone on the link. It knows nothing of what the datagrams say.

* **Two sockets, either optional.** An IPv4 socket (``SO_BROADCAST``, so it can
  send to an interface's broadcast address) and an IPv6 socket (``IPV6_V6ONLY``,
  so the two never fight over the port; joined to a link-local multicast group
  on every multicast-capable interface). Both set ``SO_REUSEADDR`` and, where it
  exists, ``SO_REUSEPORT``: two programs on one machine share the port, and the
  kernel gives each of them every broadcast and multicast datagram. A machine
  without IPv6, or a port another program holds without reuse, costs that
  family only: the endpoint works with what it has and says once, through
  ``on_unavailable(family, exc)``, what it could not open.
* **Bounded reads.** One readiness event reads at most ``RECV_BATCH`` datagrams
  (as the listener accepts at most a batch): a flood costs turns, it cannot
  keep the loop from stdin. Each is read into a buffer of ``max_bytes + 1``
  bytes, so a datagram longer than ``max_bytes`` is seen to be longer, counted
  as oversized and dropped without the kernel copying the rest of it.
* **Sending is best effort.** A datagram to a target that cannot be reached now
  (no route, an interface going down, a full buffer) is simply not sent; the
  next announcement will try again. No send error ever reaches the loop.
* **Targets without traffic.** The default targets are each up, non-loopback
  interface's IPv4 broadcast address (``SIOCGIFBRDADDR`` where ``IFF_BROADCAST``
  is set) and the multicast group on each multicast-capable interface (its
  index as the scope), as :func:`reactor.netutil.interfaces` reads them from the
  kernel: nothing is sent to find them. They are
  recomputed (and the group joined on new interfaces) at most every
  ``TARGETS_REFRESH_S``, when sending, so a network that comes up later is used.
  A ``targets`` list given to the constructor replaces them: tests send to
  loopback unicast addresses only, and join no group (``group=None``; joining
  one makes the kernel announce it on the link).
"""

from __future__ import annotations

import errno
import socket
import struct
from typing import Callable, Tuple

from .loop import EVENT_READ, Reactor
from .netutil import host_of, interfaces

MAX_DATAGRAM_BYTES = 512          # longer ones are counted as oversized and dropped
RECV_BATCH = 64                   # datagrams read per readiness event, at most
TARGETS_REFRESH_S = 30.0          # default targets are recomputed at most this often
MULTICAST_HOPS = 1                # our multicast never leaves the link

_RETRY_LATER = (BlockingIOError, InterruptedError)

# A target: (family, address, port) as a user of the endpoint names it.
Target = Tuple[int, str, int]


class DatagramEndpoint:
    """One UDP port on IPv4 and/or IPv6: receives in bounded batches, sends best effort.

    ``host`` (IPv4) and ``host6`` (IPv6) are where to bind; ``None`` leaves that
    family out. ``port`` 0 takes a free port (the IPv6 socket then asks for the
    one IPv4 got). ``group`` is the IPv6 multicast group to join and send to
    (``None``: none). ``targets`` replaces the computed default targets.

    ``on_datagram(data, sender_ip, sender_port)`` gets each datagram of at most
    ``max_bytes``; ``on_oversized(sender_ip, sender_port)`` hears of each longer
    one (which is dropped). Counters: ``received`` (every datagram read, oversized
    ones included), ``oversized``, ``sent`` and ``send_failures`` (per target).
    """

    __slots__ = ("_reactor", "_port", "_host", "_host6", "_group", "_on_datagram",
                 "_on_oversized", "_on_unavailable", "_max_bytes", "_fixed_targets",
                 "_sockets", "_handlers", "_targets", "_targets_at", "_joined", "started",
                 "closed",
                 "received", "oversized", "sent", "send_failures")

    def __init__(self, reactor: Reactor, port: int,
                 on_datagram: Callable[[bytes, str, int], None], *,
                 on_oversized: Callable[[str, int], None] | None = None,
                 on_unavailable: Callable[[int, OSError], None] | None = None,
                 host: str | None = "0.0.0.0", host6: str | None = "::",
                 group: str | None = None, targets: list[Target] | None = None,
                 max_bytes: int = MAX_DATAGRAM_BYTES) -> None:
        self._reactor = reactor
        self._port = port
        self._host = host
        self._host6 = host6
        self._group = group
        self._on_datagram = on_datagram
        self._on_oversized = on_oversized
        self._on_unavailable = on_unavailable
        self._max_bytes = max_bytes
        self._fixed_targets = list(targets) if targets is not None else None
        self._sockets: dict[int, socket.socket] = {}       # family -> socket
        self._handlers: list[_Receiver] = []
        self._targets: list[tuple[socket.socket, tuple]] = []
        self._targets_at: float | None = None
        self._joined: set[int] = set()                      # interface indexes
        self.started = False
        self.closed = False
        self.received = 0
        self.oversized = 0
        self.sent = 0
        self.send_failures = 0

    # -- opening ------------------------------------------------------------------------

    def start(self) -> DatagramEndpoint:
        """Open what can be opened and watch it; returns the endpoint (for factories)."""
        if self.started or self.closed:
            return self
        self.started = True
        if self._host is not None:
            self._open(socket.AF_INET, self._host, self._port)
        if self._host6 is not None:
            port = self._port
            ipv4 = self._sockets.get(socket.AF_INET)
            if not port and ipv4 is not None:
                port = ipv4.getsockname()[1]        # one port for both families
            self._open(socket.AF_INET6, self._host6, port)
        for family, sock in self._sockets.items():
            receiver = _Receiver(self, sock, family == socket.AF_INET6)
            self._handlers.append(receiver)
            self._reactor.set_handler(sock.fileno(), receiver, EVENT_READ)
        self._refresh_targets()
        return self

    def _open(self, family: int, host: str, port: int) -> None:
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as exc:
            self._unavailable(family, exc)
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                except OSError:
                    pass                    # defined but not supported by this kernel
            if family == socket.AF_INET:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS,
                                MULTICAST_HOPS)
            sock.setblocking(False)
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            self._unavailable(family, exc)
            return
        self._sockets[family] = sock

    def _unavailable(self, family: int, exc: OSError) -> None:
        if self._on_unavailable is not None:
            self._on_unavailable(family, exc)

    @property
    def port(self) -> int:
        """The port bound (0 if neither family could be opened)."""
        for sock in self._sockets.values():
            return sock.getsockname()[1]
        return 0

    @property
    def families(self) -> list[int]:
        """The families that are open."""
        return list(self._sockets)

    # -- receiving ----------------------------------------------------------------------

    def _receive(self, sock: socket.socket, ipv6: bool) -> None:
        limit = self._max_bytes
        for _ in range(RECV_BATCH):
            if self.closed:
                return
            try:
                data, addr = sock.recvfrom(limit + 1)
            except _RETRY_LATER:
                return
            except OSError:
                # An ICMP error queued on the socket (ECONNREFUSED after a send to a
                # port nobody has) or a transient shortage: that read is lost, not the port.
                continue
            self.received += 1
            host, port = (sender_address(addr) if ipv6 else addr[:2])
            if len(data) > limit:
                self.oversized += 1
                if self._on_oversized is not None:
                    self._on_oversized(host, port)
                continue
            self._on_datagram(data, host, port)

    # -- sending ------------------------------------------------------------------------

    def send(self, data: bytes) -> int:
        """Send ``data`` to every target; returns to how many it went (errors ignored)."""
        if self.closed:
            return 0
        now = self._reactor.time()
        if (self._fixed_targets is None and self._targets_at is not None
                and now - self._targets_at >= TARGETS_REFRESH_S):
            self._refresh_targets()
        delivered = 0
        for sock, address in self._targets:
            try:
                sock.sendto(data, address)
            except OSError:
                self.send_failures += 1     # ENETUNREACH, EADDRNOTAVAIL, EAGAIN...
                continue
            delivered += 1
        self.sent += delivered
        return delivered

    def targets(self) -> list[tuple[int, tuple]]:
        """``(family, sockaddr)`` of each current target (what ``send`` sends to)."""
        return [(sock.family, address) for sock, address in self._targets]

    def _refresh_targets(self) -> None:
        self._targets_at = self._reactor.time()
        if self._fixed_targets is not None:
            self._targets = [pair for pair in (self._fixed_target(t) for t in self._fixed_targets)
                             if pair is not None]
            return
        found: list[tuple[socket.socket, tuple]] = []
        ipv4 = self._sockets.get(socket.AF_INET)
        ipv6 = self._sockets.get(socket.AF_INET6)
        port = self.port
        for interface in interfaces():
            if not interface.usable:
                continue
            if ipv4 is not None and interface.broadcast is not None:
                found.append((ipv4, (interface.broadcast, port)))
            if ipv6 is not None and self._group is not None and interface.multicast:
                self._join(ipv6, interface.index)
                found.append((ipv6, (self._group, port, 0, interface.index)))
        self._targets = found

    def _fixed_target(self, target: Target) -> tuple[socket.socket, tuple] | None:
        family, address, port = target
        sock = self._sockets.get(family)
        if sock is None:
            return None
        return (sock, (address, port) if family == socket.AF_INET else (address, port, 0, 0))

    def _join(self, sock: socket.socket, index: int) -> None:
        if index in self._joined:
            return
        request = struct.pack("16sI", socket.inet_pton(socket.AF_INET6, self._group), index)
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, request)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:       # EADDRINUSE: joined already
                return                              # no IPv6 there (yet): next refresh
        self._joined.add(index)

    # -- closing ------------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for sock in self._sockets.values():
            self._reactor.remove_handler(sock.fileno())
            sock.close()
        self._sockets.clear()
        self._targets = []
        for receiver in self._handlers:
            receiver.closed = True
        self._handlers = []


class _Receiver:
    """The reactor's handler for one of the endpoint's sockets."""

    __slots__ = ("_endpoint", "_sock", "_ipv6", "closed")

    def __init__(self, endpoint: DatagramEndpoint, sock: socket.socket, ipv6: bool) -> None:
        self._endpoint = endpoint
        self._sock = sock
        self._ipv6 = ipv6
        self.closed = False

    def on_readable(self) -> None:
        self._endpoint._receive(self._sock, self._ipv6)

    def abort(self, exc: BaseException | None = None) -> None:
        """A bug in a callback (the reactor reported it): stop, like a listener does."""
        self._endpoint.close()


def sender_address(addr: tuple) -> tuple[str, int]:
    """``(ip, port)`` of a ``recvfrom`` address, as people write it (see
    :func:`~reactor.netutil.host_of`)."""
    return host_of(addr), addr[1]


def family_name(family: int) -> str:
    return "IPv6" if family == socket.AF_INET6 else "IPv4"


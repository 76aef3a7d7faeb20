"""Addresses without blocking and without traffic.

* :func:`maybe_numeric_host` reads what a user typed: a numeric IPv4 or IPv6
  address (normalised by :func:`normal_ip`), ``localhost``, or a host name
  (``None``: only a resolver can answer that, and ``getaddrinfo`` blocks for
  as long as the resolver likes, so names go to :mod:`reactor.resolver`, a
  helper process, never the loop).
* :func:`my_ipv4` and :func:`my_ipv6` find the addresses other machines would
  use to reach this one, and :func:`local_addresses` every address of this
  machine (for refusing connections to ourselves), and :func:`interfaces` each
  interface's flags and IPv4 broadcast address (where LAN discovery sends).
  None of them sends a packet.
"""

from __future__ import annotations

import enum
import ipaddress
import socket
import struct
import sys

_DARWIN = sys.platform == "darwin"
# ioctls on an AF_INET socket, each taking a struct ifreq (16 bytes of name, then a union).
_SIOCGIFFLAGS = 0xC0206911 if _DARWIN else 0x8913
_SIOCGIFBRDADDR = 0xC0206923 if _DARWIN else 0x8919
_SIOCGIFADDR = 0xC0206921 if _DARWIN else 0x8915
_SIOCGIFNETMASK = 0xC0206925 if _DARWIN else 0x891B
_IFREQ = "16s16s"                 # name, then sockaddr / short flags (struct ifreq is 32+)
_IFF_UP = 0x1
_IFF_BROADCAST = 0x2
_IFF_LOOPBACK = 0x8
_IFF_MULTICAST = 0x8000 if _DARWIN else 0x1000



class AddressProblem(enum.Enum):
    BAD_NUMBER = "bad number"      # digits and dots, but not four numbers 0-255
    NOT_AN_ADDRESS = "not an address"
    UNKNOWN_HOST = "unknown host"  # a name the resolver does not know


class AddressError(ValueError):
    def __init__(self, problem: AddressProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


MAX_HOST_NAME_CHARS = 253
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def maybe_numeric_host(text: str) -> str | None:
    """The address ``text`` is, in its normal form; ``None`` for a host name, which
    only a resolver can answer (:mod:`reactor.resolver`, off the loop); else
    :class:`AddressError`.

    IPv6 may come in brackets and with a zone (``[fe80::1%eth0]``); an
    IPv4-mapped address (``::ffff:10.0.0.5``) is the IPv4 address it maps, so
    the self and duplicate checks compare like with like. ``localhost`` is
    127.0.0.1 without asking anyone.
    """
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return normal_ip(text)
    except ValueError:
        pass
    if all(c.isdigit() or c == "." for c in text):
        raise AddressError(AddressProblem.BAD_NUMBER)
    name = text.lower().rstrip(".")
    if not name or len(name) > MAX_HOST_NAME_CHARS or not set(name) <= _NAME_CHARS \
            or any(not 0 < len(label) <= 63 for label in name.split(".")):
        raise AddressError(AddressProblem.NOT_AN_ADDRESS)
    if name == "localhost":
        return "127.0.0.1"
    return None


def normal_ip(text: str) -> str:
    """A numeric address in its one written form (``ValueError`` if it is not one):
    IPv6 compressed and lower case, its zone kept; IPv4-mapped IPv6 as IPv4."""
    address, percent, zone = text.partition("%")
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        if percent:
            raise ValueError(text)
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if percent and (not zone or not zone.isprintable() or " " in zone or len(zone) > 64):
        raise ValueError(text)
    return f"{ip}%{zone}" if percent else str(ip)


def host_of(sockaddr: tuple) -> str:
    """The peer's address as we write it, from what ``accept`` or ``recvfrom`` gave."""
    host = sockaddr[0]
    if ":" not in host:
        return host
    if "%" not in host and len(sockaddr) > 3 and sockaddr[3]:
        try:
            host = f"{host}%{socket.if_indextoname(sockaddr[3])}"
        except OSError:
            host = f"{host}%{sockaddr[3]}"
    try:
        return normal_ip(host)
    except ValueError:
        return host


def sockaddr_for(ip: str, port: int) -> tuple[int, tuple]:
    """``(family, sockaddr)`` to connect or bind a numeric address (zone included).

    ``AI_NUMERICHOST`` makes getaddrinfo parse, never ask a resolver: it cannot block.
    """
    info = socket.getaddrinfo(ip, port, type=socket.SOCK_STREAM,
                              flags=socket.AI_NUMERICHOST)[0]
    return info[0], info[4]


def maybe_port(text: str, allow_zero: bool = False) -> int | None:
    """A TCP port as typed or received: ASCII digits only, 1-65535 (0 if allowed), else None.

    ``str.isdigit`` alone would take other scripts' digits ("٨٠٨٠"), and
    ``int`` would take "+22" and "6_5_5_3_5".
    """
    value = maybe_ascii_number(text, 5)
    if value is None:
        return None
    return value if value <= 65535 and (value or allow_zero) else None


def maybe_ascii_number(text: str, max_chars: int = 10) -> int | None:
    """A whole number written in ASCII digits only (at most ``max_chars``), else None.

    The one digit rule of the program's side below the commands (ports, the wire's
    numbers, the command line): no sign, no ``_``, no other scripts' digits.
    """
    if len(text) > max_chars or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def _interface_address(sock: socket.socket, name: str) -> str | None:
    import fcntl
    try:
        packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR,
                             struct.pack("256s", name.encode()[:15]))
    except OSError:
        return None  # the interface has no IPv4 address
    return socket.inet_ntoa(packed[20:24])


def _interfaces() -> list[tuple[str, str]]:
    """``(name, address)`` of every interface that has an IPv4 address."""
    result = []
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return result
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for name in names:
            addr = _interface_address(sock, name)
            if addr is not None:
                result.append((name, addr))
    return result


def _ipv6_addresses(path: str = "/proc/net/if_inet6") -> list[tuple[str, str]]:
    """Linux: ``(interface, address)`` of every IPv6 address (link-local with its zone)."""
    result = []
    try:
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) < 6 or len(fields[0]) != 32:
                    continue
                ip = ipaddress.IPv6Address(int(fields[0], 16))
                text = f"{ip}%{fields[5]}" if ip.is_link_local else str(ip)
                result.append((fields[5], text))
    except (OSError, ValueError):
        return []
    return result


def local_addresses() -> set[str]:
    """Every address that reaches this machine (loopback and wildcards included)."""
    addrs = {addr for _, addr in _interfaces()}
    addrs.update(addr for _, addr in _ipv6_addresses())
    addrs.update({"127.0.0.1", "0.0.0.0", "::1", "::"})
    return addrs


def is_loopback(addr: str) -> bool:
    return ipaddress.ip_address(addr.partition("%")[0]).is_loopback


def is_local_address(addr: str, local: set[str]) -> bool:
    if addr in local:
        return True
    ip = ipaddress.ip_address(addr.partition("%")[0])
    return ip.is_loopback or ip.is_unspecified


def _default_route_interface(path: str = "/proc/net/route") -> str | None:
    """Linux: the interface of the default route with the lowest metric."""
    best = None
    try:
        with open(path) as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if len(fields) < 8 or fields[1] != "00000000" or fields[7] != "00000000":
                    continue
                if not int(fields[3], 16) & 1:  # RTF_UP
                    continue
                metric = int(fields[6])
                if best is None or metric < best[0]:
                    best = (metric, fields[0])
    except (OSError, ValueError):
        return None
    return best[1] if best else None


def _route_source_address(family: int = socket.AF_INET) -> str | None:
    """Let the kernel pick a source address for a routed destination.

    ``connect`` on a UDP socket only selects a route and a source address; it
    sends nothing. 192.0.2.1 (TEST-NET-1) and 2001:db8::1 are reserved for
    documentation.
    """
    target = ("192.0.2.1", 9) if family == socket.AF_INET else ("2001:db8::1", 9)
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect(target)
            addr = sock.getsockname()[0]
    except OSError:
        return None
    return None if addr in ("0.0.0.0", "::") else addr


def my_ipv4() -> str:
    """The source address of the default route; else an interface's; else 127.0.0.1."""
    interfaces = _interfaces()
    by_name = dict(interfaces)
    if sys.platform.startswith("linux"):
        name = _default_route_interface()
        if name is not None and name in by_name:
            return by_name[name]
        routed = None
    else:
        routed = _route_source_address()
    if routed is not None:
        return routed
    for _, addr in interfaces:
        if not ipaddress.ip_address(addr).is_loopback:
            return addr
    return "127.0.0.1"


def my_ipv6() -> str | None:
    """The IPv6 address other machines would reach us at, if this machine has one that
    is routed (global or unique-local; never link-local or loopback)."""
    addr = _route_source_address(socket.AF_INET6)
    if addr is None:
        return None
    ip = ipaddress.ip_address(addr.partition("%")[0])
    if ip.is_link_local or ip.is_loopback or ip.ipv4_mapped is not None:
        return None
    return str(ip)


class Interface:
    """What the kernel says of one interface, for choosing where to send."""

    __slots__ = ("name", "index", "flags", "broadcast")

    def __init__(self, name: str, index: int, flags: int, broadcast: str | None) -> None:
        self.name = name
        self.index = index
        self.flags = flags
        self.broadcast = broadcast        # its IPv4 broadcast address, if it has one

    @property
    def usable(self) -> bool:
        """Up, and not the loopback (whose 'link' is this machine alone)."""
        return bool(self.flags & _IFF_UP) and not self.flags & _IFF_LOOPBACK

    @property
    def multicast(self) -> bool:
        return self.usable and bool(self.flags & _IFF_MULTICAST)


def interfaces() -> list[Interface]:
    """Every interface with its flags and IPv4 broadcast address; sends nothing."""
    import fcntl
    try:
        named = socket.if_nameindex()
    except OSError:
        return []
    found = []
    try:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError:
        return []
    with probe:
        for index, name in named:
            request = struct.pack(_IFREQ, name.encode()[:15], b"")
            try:
                flags = struct.unpack_from("H", fcntl.ioctl(probe.fileno(), _SIOCGIFFLAGS,
                                                            request), 16)[0]
            except OSError:
                continue                    # gone since if_nameindex
            broadcast = None
            if flags & _IFF_BROADCAST:
                broadcast = _broadcast_address(probe, request)
            found.append(Interface(name, index, flags, broadcast))
    return found


def _broadcast_address(probe: socket.socket, request: bytes) -> str | None:
    """The interface's IPv4 broadcast address; ``None`` if it has no IPv4 address.

    An address added without one (``ip addr add 10.0.0.1/24``: the broadcast
    reads 0.0.0.0) still has its subnet's, ``address | ~netmask``: Linux makes a
    broadcast route for it whatever the configured one (for prefixes up to /30).
    """
    import fcntl

    def ask(request_code: int) -> int | None:
        try:
            reply = fcntl.ioctl(probe.fileno(), request_code, request)
        except OSError:
            return None                     # no IPv4 address on it
        return struct.unpack("!I", reply[20:24])[0]

    configured = ask(_SIOCGIFBRDADDR)
    if configured is None:
        return None
    if configured:
        return socket.inet_ntoa(struct.pack("!I", configured))
    address, netmask = ask(_SIOCGIFADDR), ask(_SIOCGIFNETMASK)
    if not address or netmask is None or netmask >= 0xFFFFFFFE:
        return None                         # /31 and /32 have no broadcast address
    return socket.inet_ntoa(struct.pack("!I", address | (~netmask & 0xFFFFFFFF)))

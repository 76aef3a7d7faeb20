"""Addresses without blocking and without traffic.

* :func:`resolve_ipv4` turns what a user typed into a numeric IPv4 address
  without a DNS query (``getaddrinfo`` blocks the loop for as long as the
  resolver likes): numeric addresses, ``localhost`` and names in /etc/hosts.
* :func:`my_ipv4` finds the address other machines would use to reach this
  one, and :func:`local_ipv4_addresses` every address of this machine (for
  refusing connections to ourselves). Neither sends a packet.
"""

from __future__ import annotations

import enum
import ipaddress
import socket
import struct
import sys

HOSTS_FILE = "/etc/hosts"

# ioctl(SIOCGIFADDR): the IPv4 address of one interface.
_SIOCGIFADDR = 0xC0206921 if sys.platform == "darwin" else 0x8915


class AddressProblem(enum.Enum):
    IPV6 = "ipv6"                  # an IPv6 address: only IPv4 is supported
    BAD_NUMBER = "bad number"      # digits and dots, but not four numbers 0-255
    NOT_AN_ADDRESS = "not an address"
    UNKNOWN_HOST = "unknown host"  # a name that is not in the hosts file


class AddressError(ValueError):
    def __init__(self, problem: AddressProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


def resolve_ipv4(text: str, hosts_file: str = HOSTS_FILE) -> str:
    """Return a numeric IPv4 address for ``text`` or raise :class:`AddressError`."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        if addr.version != 4:
            raise AddressError(AddressProblem.IPV6)
        return str(addr)
    if all(c.isdigit() or c == "." for c in text):
        raise AddressError(AddressProblem.BAD_NUMBER)
    name = text.lower().rstrip(".")
    if not name or any(c.isspace() for c in name) or ":" in name:
        raise AddressError(AddressProblem.NOT_AN_ADDRESS)
    if name == "localhost":
        return "127.0.0.1"
    found = _lookup_hosts_file(name, hosts_file)
    if found is None:
        raise AddressError(AddressProblem.UNKNOWN_HOST)
    return found


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


def _lookup_hosts_file(name: str, path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split("#", 1)[0].split()
                if len(fields) < 2 or name not in (n.lower() for n in fields[1:]):
                    continue
                try:
                    if ipaddress.ip_address(fields[0]).version == 4:
                        return fields[0]
                except ValueError:
                    continue
    except OSError:
        return None
    return None


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


def local_ipv4_addresses() -> set[str]:
    """Every IPv4 address that reaches this machine (loopback included)."""
    addrs = {addr for _, addr in _interfaces()}
    addrs.update({"127.0.0.1", "0.0.0.0"})
    return addrs


def is_local_address(addr: str, local: set[str]) -> bool:
    return addr in local or ipaddress.ip_address(addr).is_loopback


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


def _route_source_address() -> str | None:
    """Elsewhere: let the kernel pick a source address for a routed destination.

    ``connect`` on a UDP socket only selects a route and a source address; it
    sends nothing. 192.0.2.1 is TEST-NET-1, reserved for documentation.
    """
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))
            addr = sock.getsockname()[0]
    except OSError:
        return None
    return None if addr == "0.0.0.0" else addr


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

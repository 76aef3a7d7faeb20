"""Throw-away test hosts: Linux network namespaces joined by veth pairs.

Each :class:`Host` is a network namespace with its own loopback, interfaces,
addresses and routes, so chat.py running inside it (``ip netns exec``) sees a
real network: ``myip`` has a real interface to report, peers have distinct
addresses, and a cable can be pulled (``ip link set ... down``: no FIN, no RST).

Addresses come from 10.231.0.0/16, a private range no test reaches outside
the namespaces this module makes. Everything it creates carries a prefix with
the test process's pid and is removed by :meth:`TestNetwork.close`, also when
a test fails (deleting a namespace deletes its links too).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess

PREFIX = "chatt"            # every namespace and link we make starts with this
_counter = itertools.count(1)


def why_not_available() -> str | None:
    """``None`` if namespaces can be made here, else the reason to skip."""
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"{PREFIX}probe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    out = subprocess.run(["ip", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {out.stderr.strip()}")


class Host:
    """One namespace. ``address`` is its address on the first link it got."""

    def __init__(self, ns: str, name: str) -> None:
        self.ns = ns
        self.name = name
        self.address: str | None = None
        self.address6: str | None = None     # its IPv6 address on a switch (unique-local)
        self.iface: str | None = None
        self.gateway: str | None = None

    @property
    def prefix(self) -> list[str]:
        """Put before a command to run it inside this host."""
        return ["ip", "netns", "exec", self.ns]

    def ip(self, *args: str) -> None:
        _ip("-n", self.ns, *args)

    def etc(self, name: str, text: str) -> None:
        """A file that replaces /etc/<name> inside this host (``ip netns exec`` mounts
        /etc/netns/<namespace>/<name> over it): its own hosts file, its own resolver."""
        folder = f"/etc/netns/{self.ns}"
        os.makedirs(folder, exist_ok=True)
        with open(f"{folder}/{name}", "w") as f:
            f.write(text)

    def cable(self, up: bool) -> None:
        """Plug or pull this host's cable (its end of the link)."""
        self.ip("link", "set", self.iface, "up" if up else "down")
        if up and self.gateway:
            # Taking a link down drops the routes through it: put them back.
            self.ip("route", "replace", "default", "via", self.gateway, "dev", self.iface)


class TestNetwork:
    """A set of hosts; close() removes every namespace (and so every link)."""

    def __init__(self) -> None:
        self.tag = f"{PREFIX}{os.getpid() % 100000}n{next(_counter)}"
        self.hosts: list[Host] = []
        self._subnets = itertools.count(1 + (os.getpid() % 200))
        self._extra_ns: list[str] = []

    def add_host(self, name: str) -> Host:
        ns = f"{self.tag}{name}"
        _ip("netns", "add", ns)
        host = Host(ns, name)
        self.hosts.append(host)
        host.ip("link", "set", "lo", "up")
        return host

    def _subnet(self) -> str:
        return f"10.231.{next(self._subnets) % 250}"

    def link(self, a: Host, b: Host, default_route: bool = True) -> str:
        """Join two hosts with a veth pair; returns the subnet (x.y.z)."""
        net = self._subnet()
        ends = (f"v{self.tag[-9:]}{a.name}", f"v{self.tag[-9:]}{b.name}")
        _ip("link", "add", ends[0][:15], "netns", a.ns, "type", "veth",
            "peer", "name", ends[1][:15], "netns", b.ns)
        for host, end, octet, other in ((a, ends[0][:15], 1, 2), (b, ends[1][:15], 2, 1)):
            host.ip("addr", "add", f"{net}.{octet}/24", "dev", end)
            host.ip("link", "set", end, "up")
            host.address, host.iface = f"{net}.{octet}", end
            if default_route:
                host.gateway = f"{net}.{other}"
                host.ip("route", "add", "default", "via", host.gateway)
        return net

    def switch(self, hosts: list[Host], default_route: bool = True, ipv6: bool = False) -> str:
        """Join several hosts through a bridge living in a namespace of its own
        (``ipv6``: each also gets fd31:<subnet>::<i>/64, usable at once: no DAD wait)."""
        net = self._subnet()
        sw = f"{self.tag}sw"
        _ip("netns", "add", sw)
        self._extra_ns.append(sw)
        _ip("-n", sw, "link", "add", "br0", "type", "bridge")
        _ip("-n", sw, "link", "set", "br0", "up")
        for i, host in enumerate(hosts, 1):
            inside, port = f"eth{i}", f"p{i}"
            _ip("link", "add", inside, "netns", host.ns, "type", "veth",
                "peer", "name", port, "netns", sw)
            _ip("-n", sw, "link", "set", port, "master", "br0")
            _ip("-n", sw, "link", "set", port, "up")
            host.ip("addr", "add", f"{net}.{i}/24", "dev", inside)
            host.ip("link", "set", inside, "up")
            host.address, host.iface = f"{net}.{i}", inside
            if ipv6:
                host.address6 = f"fd31:{net.rsplit('.', 1)[1]}::{i}"
                host.ip("-6", "addr", "add", f"{host.address6}/64", "dev", inside, "nodad")
            if default_route:
                host.gateway = f"{net}.254"      # nobody: a route is all we need
                host.ip("route", "add", "default", "via", host.gateway)
        return net

    def close(self) -> None:
        for ns in [h.ns for h in self.hosts] + self._extra_ns:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
        self.hosts.clear()
        self._extra_ns.clear()

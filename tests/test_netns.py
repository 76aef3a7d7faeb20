"""chat.py across real (namespaced) hosts: addresses, routes, pulled cables.

Skipped, with the reason, where network namespaces cannot be made (not root,
no iproute2); CI runs as root, so there they run.
"""

from __future__ import annotations

import re
import time

import pytest

import netns

REASON = netns.why_not_available()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


@pytest.fixture
def net():
    network = netns.TestNetwork()
    try:
        yield network
    finally:
        network.close()


def start(chat, host, *args):
    return chat("0", *args, prefix=host.prefix)


def test_myip_is_the_hosts_own_address(chat, net):
    a, b = net.add_host("a"), net.add_host("b")
    net.link(a, b)
    lonely = net.add_host("c")
    other = net.add_host("d")
    net.link(lonely, other, default_route=False)
    for host in (a, b, lonely):
        p = start(chat, host)
        p.type("myip")
        p.wait_for(rf"IP address: {re.escape(host.address)}\n")


def test_two_hosts_talk_both_ways_by_address(chat, net):
    a, b = net.add_host("a"), net.add_host("b")
    net.link(a, b)
    pa, pb = start(chat, a), start(chat, b)
    pa.type(f"connect {b.address} {pb.port}")
    pa.wait_for(rf"connected to peer 1 \({re.escape(b.address)}:{pb.port}\)")
    pb.wait_for(rf"peer 1 \({re.escape(a.address)}:{pa.port}\) connected to you")
    pa.type("send 1 hello over the wire", "list")
    pb.wait_for(rf"message from peer 1 \({re.escape(a.address)}:{pa.port}\): "
                r"hello over the wire\n")
    pa.wait_for(rf"\n +1  - +{re.escape(b.address)}:{pb.port} +you connected +\S.*\n")
    pb.type("send 1 and back", "list")
    pa.wait_for(rf"message from peer 1 \({re.escape(b.address)}:{pb.port}\): and back\n")
    pb.wait_for(rf"\n +1  - +{re.escape(a.address)}:{pa.port} +it connected +\S.*\n")


def test_three_host_mesh(chat, net):
    a, b, c = net.add_host("a"), net.add_host("b"), net.add_host("c")
    net.switch([a, b, c])
    pa, pb, pc = start(chat, a), start(chat, b), start(chat, c)
    pc.type(f"connect {a.address} {pa.port}")
    pc.wait_for(r"connected to peer 1 ")
    pc.type(f"connect {b.address} {pb.port}")
    pc.wait_for(r"connected to peer 2 ")
    pa.type(f"connect {b.address} {pb.port}")
    pa.wait_for(r"connected to peer 2 ")
    pc.type("send 1 to a from c", "send 2 to b from c")
    pa.wait_for(rf"message from peer 1 \({re.escape(c.address)}:{pc.port}\): to a from c\n")
    pb.wait_for(rf"message from peer 1 \({re.escape(c.address)}:{pc.port}\): to b from c\n")
    pa.type("send 2 a to b")
    pb.wait_for(rf"message from peer 2 \({re.escape(a.address)}:{pa.port}\): a to b\n")
    # Already connected, in the other direction: said, not an error.
    pb.type(f"connect {c.address} {pc.port}")
    pb.wait_for(rf"already connected to {re.escape(c.address)}:{pc.port} as peer 1\n")


def test_connecting_to_yourself_by_your_routable_address_is_refused(chat, net):
    a, b = net.add_host("a"), net.add_host("b")
    net.link(a, b)
    pa = start(chat, a)
    pa.type(f"connect {a.address} {pa.port}")
    pa.wait_for(rf"error: cannot connect to {re.escape(a.address)}:{pa.port}: "
                r"that is this peer itself", stream="err")
    pa.type("list")
    pa.wait_for(r"no connections")


@pytest.mark.timeout(90)
def test_pulling_the_cable_is_noticed_by_heartbeat_and_plugging_it_back_works(chat, net):
    a, b = net.add_host("a"), net.add_host("b")
    net.link(a, b)
    pa = start(chat, a, "--heartbeat", "0.2")
    pb = start(chat, b, "--heartbeat", "0.2")
    pa.type(f"connect {b.address} {pb.port}")
    pb.wait_for(r"peer 1 \(.*\) connected to you")
    pa.type("send 1 before the cable is pulled")
    pb.wait_for(r"before the cable is pulled")
    a.cable(up=False)                       # no FIN, no RST: the wire just goes quiet
    pulled = time.monotonic()
    # Both notice by heartbeat, --heartbeat 0.2's: the deadline (15 s) is far below the
    # default's 3 x 15 s, and neither drops before 3 silent heartbeats (0.6 s).
    dropped = r"dropped peer 1 \([^)]*\): it stopped answering \(no sign of life for ([\d.]+) s\)\n"
    ma = pa.wait_for(dropped, timeout=15)
    ta = time.monotonic() - pulled
    mb = pb.wait_for(dropped, timeout=15)
    tb = time.monotonic() - pulled
    print(f"FIGURE cable pull, host a ({a.address}): {ma.group(0).strip()!r} after {ta:.1f} s")
    print(f"FIGURE cable pull, host b ({b.address}): {mb.group(0).strip()!r} after {tb:.1f} s")
    assert float(ma.group(1)) >= 0.6 and float(mb.group(1)) >= 0.6
    a.cable(up=True)
    pa.type(f"connect {b.address} {pb.port}")
    pa.wait_for(rf"connected to peer 2 \({re.escape(b.address)}:{pb.port}\)", timeout=15)
    pa.type("send 2 after the cable is back")
    pb.wait_for(r"message from peer 2 \([^)]*\): after the cable is back\n")


@pytest.mark.timeout(60)
def test_connect_to_an_address_nobody_has_fails_within_the_timeout(chat, net):
    a, b = net.add_host("a"), net.add_host("b")
    subnet = net.link(a, b)
    pa = start(chat, a, "--connect-timeout", "0.5")
    pb = start(chat, b)
    pb.type(f"connect {a.address} {pa.port}")
    pa.wait_for(r"peer 1 \(.*\) connected to you")
    started = time.monotonic()
    pa.type(f"connect {subnet}.77 {pb.port}")
    pa.wait_for(rf"connecting to {re.escape(subnet)}\.77:{pb.port} as peer \d+ \.\.\.")
    pb.type("send 1 the loop still serves")
    pa.wait_for(r"message from peer 1 \([^)]*\): the loop still serves\n")
    # By --connect-timeout's 0.5 s (the error says so), unless the kernel gave up first.
    m = pa.wait_for(rf"error: could not connect to {re.escape(subnet)}\.77:{pb.port}: "
                    r"(timed out \(no answer after 0\.5 s\)|no route to host)", stream="err",
                    timeout=10)
    print(f"FIGURE connect to nobody: {m.group(1)!r} after {time.monotonic() - started:.1f} s")

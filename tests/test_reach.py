"""Reaching people, not IPv4 addresses: IPv6, names, the LAN, across real (namespaced) hosts.

Three hosts on one switch (a bridge), each with an IPv4 and an IPv6 address; a
host's own hosts file and resolver (``ip netns exec`` mounts /etc/netns/<ns>/
over /etc); announcements on that switch only. Skipped, with the reason, where
network namespaces cannot be made (not root, no iproute2); CI runs as root.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

import netns
from helpers import ROOT, figure
from peerkit import make_identity

REASON = netns.why_not_available()
pytestmark = [pytest.mark.skipif(REASON is not None, reason=REASON or ""),
              pytest.mark.timeout(90)]


@pytest.fixture
def three():
    network = netns.TestNetwork()
    try:
        hosts = [network.add_host(name) for name in ("a", "b", "c")]
        network.switch(hosts, ipv6=True)
        yield hosts
    finally:
        network.close()


def start(chat, host, *args, lan=False):
    return chat("0", *args, prefix=host.prefix, lan=lan)


def in_host(host, code: str, *args: str, **kw) -> subprocess.Popen:
    """A Python snippet run inside ``host`` (the test's own process there)."""
    return subprocess.Popen([*host.prefix, sys.executable, "-c", code, *args], cwd=str(ROOT),
                            **kw)


def test_ipv6_addresses_and_a_name_only_one_hosts_resolver_knows(chat, homes, three):
    a, b, c = three
    b6 = re.escape(b.address6)
    c.etc("hosts", f"127.0.0.1 localhost\n{b.address6} bob.test\n")
    pa, pb = start(chat, a, *homes("alice")), start(chat, b, *homes("bob"))
    pc = start(chat, c, *homes("carol"))
    pa.type(f"connect [{b.address6}]:{pb.port}")
    pa.wait_for(rf"connected to peer 1 \(\[{b6}\]:{pb.port}\)")
    pb.wait_for(rf"peer 1 \(\[{re.escape(a.address6)}\]:{pa.port}\) connected to you")
    pa.type("list")
    pa.wait_for(rf"\n +1  - +\[{b6}\]:{pb.port} +you connected +encrypted \w+\n")
    # One peer, two families: dialling its IPv4 address finds the connection we have.
    pa.type(f"connect {b.address} {pb.port}")
    pa.wait_for(rf"already connected to \[{b6}\]:{pb.port} as peer 1\n")
    # Ourselves, by every name we have (the IPv4-mapped form is the IPv4 address).
    for target in (f"{b.address} {pb.port}", f"[{b.address6}]:{pb.port}",
                   f"::ffff:{b.address} {pb.port}"):
        pb.type(f"connect {target}")
    for _ in range(3):
        pb.wait_for(r"that is this peer itself\n", "err")
    assert pb.text("err").count("that is this peer itself") == 3
    # A name that only c's hosts file knows, looked up off the loop.
    pc.type(f"connect bob.test {pb.port}")
    pc.wait_for(rf"connecting to bob\.test:{pb.port} as peer 1 \.\.\.")
    pc.wait_for(rf"connected to peer 1 \(\[{b6}\]:{pb.port}\)")
    pc.type("send 1 hello by name")
    pb.wait_for(rf"message from peer 2 \(\[{re.escape(c.address6)}\]:{pc.port}\): "
                r"hello by name\n")
    pb.type(f"send [{a.address6}]:{pa.port} back over ipv6")
    pa.wait_for(r"back over ipv6\n")
    for p in (pa, pb, pc):
        assert "Traceback" not in p.text("err")


@pytest.mark.parametrize("within_s", [pytest.param(2.0, marks=pytest.mark.slow), 10.0])
def test_three_peers_see_each_other_nearby_and_connect_by_name(chat, homes, three, within_s):
    peers = {name: start(chat, host, *homes(name), "--name", name, lan=True)
             for name, host in zip(("alice", "bob", "carol"), three)}
    started = time.monotonic()
    for name, p in peers.items():
        others = [other for other in peers if other != name]
        seen = None
        while time.monotonic() - started < within_s:
            p.type("nearby")
            table = p.wait_for(r"name +ID +address +heard +trusted\n((?:.*ago.*\n)+)").group(1)
            if all(re.search(rf"^{other} ", table, re.M) for other in others):
                seen = time.monotonic() - started
                break
        assert seen is not None, f"{name} did not hear {others} within {within_s} s"
        figure(f"{name} heard both others after (s)", round(seen, 2))
    alice = peers["alice"]
    alice.type("connect bob")
    alice.wait_for(r"connected to peer 1 bob \(")
    alice.type("send bob found you on the LAN")
    peers["bob"].wait_for(r"message from peer 1 alice \([^)]*\): found you on the LAN\n")


def test_a_forged_announcement_gets_a_refused_connection_and_the_warning(chat, homes, tmp_path,
                                                                        three):
    a, _, c = three
    bob = make_identity(tmp_path / "bob")              # the real bob is not even running
    alice = start(chat, a, *homes("alice"), "--name", "alice", lan=True)
    alice.type(f"trust {bob.id} bob")                  # read out to alice on the phone
    alice.wait_for(r"you trust bob \(ID ")
    mallory = start(chat, c, *homes("mallory"), "--no-announce")
    forged = ("import socket, sys\n"
              "sys.path.insert(0, '.')\n"
              "from network.discovery import announcement, DISCOVERY_PORT\n"
              "data = announcement(bytes.fromhex(sys.argv[1]), '0123456789abcdef',\n"
              "                    int(sys.argv[2]), 'chat/2', 'bob')\n"
              "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              "s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)\n"
              "s.sendto(data, (sys.argv[3], DISCOVERY_PORT))\n")
    broadcast = c.address.rsplit(".", 1)[0] + ".255"
    sender = in_host(c, forged, bob.fingerprint.hex(), str(mallory.port), broadcast)
    assert sender.wait(timeout=30) == 0
    alice.wait_for(rf"WARNING: IDENTITY CHANGED for bob at {re.escape(c.address)}:"
                   rf"{mallory.port}!", "err", timeout=20)
    alice.wait_for(r"this peer shows ID ", "err")
    alice.type("nearby", "list")
    alice.wait_for(rf"bob +\w+ +{re.escape(c.address)}:{mallory.port} .* claims =bob=\n")
    alice.wait_for(r"no connections")                  # refused: never shown, never =bob=
    assert not re.search(r"(?<!claims )=bob=", alice.text())
    assert alice.text("err").count("WARNING") == 1     # once, not once per retry
    assert "Traceback" not in alice.text("err")


SILENT_DNS = ("import socket, time\n"
              "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              "s.bind(('127.0.0.1', 53))\n"
              "print('ready', flush=True)\n"
              "while True:\n"
              "    s.recv(4096)             # and never answer\n")


@pytest.fixture
def stalling(three):
    """A host whose resolver stalls 10 s on every name (its DNS server never answers)."""
    host = three[0]
    host.etc("hosts", "127.0.0.1 localhost\n")
    host.etc("resolv.conf", "nameserver 127.0.0.1\noptions timeout:10 attempts:1\n")
    dns = in_host(host, SILENT_DNS, stdout=subprocess.PIPE, text=True)
    try:
        assert dns.stdout.readline() == "ready\n"
        yield host
    finally:
        dns.kill()
        dns.wait(timeout=10)


@pytest.mark.slow      # times an answer (the 50 ms bound)
def test_a_stalling_resolver_never_stalls_the_loop_and_the_timeout_bounds_it(chat, stalling):
    p = start(chat, stalling, "--host", "127.0.0.1", "--connect-timeout", "3")
    p.type("connect slow.test 8080")
    p.wait_for(r"connecting to slow\.test:8080 as peer 1 \.\.\.")
    answers = []
    for _ in range(5):
        asked = time.monotonic()
        p.type("myport")
        p.wait_for(rf"listening port: {p.port}\n")
        answers.append(time.monotonic() - asked)
    figure("myport during a stalled lookup, slowest of 5 (ms)", round(max(answers) * 1000, 1))
    assert max(answers) < 0.05
    p.wait_for(r"could not connect to slow\.test:8080: timed out \(no answer after 3 s\)",
               "err", timeout=10)


def test_ctrl_c_cancels_a_stalled_lookup_and_kills_its_helper(stalling):
    from test_signals import Pty
    t = Pty(["ip", "netns", "exec", stalling.ns, sys.executable, str(ROOT / "chat.py"), "0",
             "--host", "127.0.0.1", "--connect-timeout", "60", "--no-announce"])
    try:
        t.type(b"connect slow.test 8080\r")
        t.wait_for(rb"connecting to slow\.test:8080 as peer 1 \.\.\. \(Ctrl-C to cancel\)")
        chat_pid = _only_child(t.proc.pid)             # ip netns exec execs, or forks
        assert _children(chat_pid), "the lookup runs in a helper process"
        t.type(b"\x03")
        t.wait_for(rb"cancelled the connection to slow\.test:8080")
        deadline = time.monotonic() + 5
        while _children(chat_pid) and time.monotonic() < deadline:
            time.sleep(0.02)                            # polling the process table
        assert not _children(chat_pid), "the helper was killed and reaped"
        assert t.proc.poll() is None                    # Ctrl-C ended the lookup only
        t.type(b"exit\r")
        assert t.wait_exit() == 0
    finally:
        t.close()


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _only_child(pid: int) -> int:
    """The chat.py process: ``pid`` itself, or the one child it started."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        if b"chat.py" in f.read():
            return pid
    kids = _children(pid)
    assert len(kids) == 1, kids
    return kids[0]


JUNK = ("import os, socket, sys\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "port = int(sys.argv[1])\n"
        "for n in range(10_000):\n"
        "    data = os.urandom(40) if n % 2 else b'chat.py-announce 1 ' + b'x' * 3000\n"
        "    s.sendto(data, ('127.0.0.1', port))\n")


def test_ten_thousand_junk_datagrams_cost_bounded_memory_and_one_notice_a_second(chat, homes,
                                                                                three):
    from helpers import cpu_seconds, proc_status_kib
    from network.discovery import DISCOVERY_PORT
    host = three[0]
    p = start(chat, host, *homes("alice"), "--timestamps", lan=True)
    p.type("myport")
    p.wait_for(r"listening port")
    rss_before, cpu_before = proc_status_kib(p.pid, "VmRSS"), cpu_seconds(p.pid)
    began = time.monotonic()
    sender = in_host(host, JUNK, str(DISCOVERY_PORT))
    assert sender.wait(timeout=60) == 0
    p.wait_for(r"ignored \d+ datagrams? at the discovery port")
    deadline = time.monotonic() + 10        # the last summary comes a second after the one before
    while time.monotonic() < deadline:
        counted = sum(int(n) for n in re.findall(r"ignored (\d+) datagram", p.text()))
        if counted >= 9_000:
            break
        time.sleep(0.05)                     # polling what it printed
    elapsed = time.monotonic() - began
    p.type("myport")                         # still answering
    p.wait_for(r"listening port.*\n.*listening port|listening port", timeout=5)
    notices = re.findall(r"\[(\d\d:\d\d:\d\d)\] ignored (\d+) datagram", p.text())
    counted = sum(int(n) for _, n in notices)
    rss_growth = proc_status_kib(p.pid, "VmRSS") - rss_before
    cpu = cpu_seconds(p.pid) - cpu_before
    figure("junk datagrams counted (of 10,000 sent; the kernel may drop some)", counted)
    figure("notices", len(notices))
    figure("RSS growth over the flood (KiB)", rss_growth)
    figure("CPU for the flood (s)", round(cpu, 3))
    assert counted >= 5_000
    assert len(notices) <= elapsed + 2                     # at most one a second
    assert len(set(stamp for stamp, _ in notices)) == len(notices)
    assert rss_growth < 2048                               # bounded: no table of junk
    assert "Traceback" not in p.text("err") and "internal error" not in p.text("err")

"""What a connection merely claims, and what used to be decided by timing: real processes.

Each test here reproduces one way the first version's protocol gave way to a
stranger or a slow link, and shows it holds now. The logic behind each is
unit-tested on a fake clock in test_peer_protocol.py and test_node.py; these
are the end-to-end proofs, on loopback, through a delaying proxy where a
slow link matters.
"""

from __future__ import annotations

import re
import socket
import time

import pytest

from helpers import DelayProxy, recv_line, wait_until

LOCAL = ["--host", "127.0.0.1"]


def test_the_readme_script_reaches_the_intended_peer_while_a_stranger_knocks(chat):
    b = chat("0", *LOCAL, "--stay")
    proxy = DelayProxy(b.port, 0.1)          # the intended peer is a slow link away
    try:
        a = chat("0", *LOCAL)
        a.type(f"connect 127.0.0.1 {proxy.port}")
        a.wait_for(r"connecting to 127\.0\.0\.1:\d+ as peer 1 \.\.\.")
        with socket.create_connection(("127.0.0.1", a.port)) as stranger:
            stranger.sendall(b"I am a stranger\n")
            a.wait_for(r"peer 2 \(127\.0\.0\.1:\d+\) connected to you")   # while connecting
            a.type("send 1 secret", "exit")
            b.wait_for(r"message from peer 1 \(127\.0\.0\.1:\d+\): secret\n", timeout=10)
            assert a.wait_exit() == 0
            stranger.settimeout(5)
            heard = b""
            while chunk := stranger.recv(4096):
                heard += chunk
            assert b"secret" not in heard
        assert re.search(r"connected to peer 1 \(127\.0\.0\.1:\d+\)\nsent to peer 1 ", a.text())
    finally:
        proxy.close()


@pytest.mark.parametrize("delay", [0.0, pytest.param(0.1, marks=pytest.mark.slow)])
def test_twenty_simultaneous_connects_each_settle_on_one_connection(chat, delay):
    a = chat("0", *LOCAL)
    b = chat("0", *LOCAL)
    proxies = [DelayProxy(b.port, delay), DelayProxy(a.port, delay)] if delay else []
    to_b, to_a = (proxies[0].port, proxies[1].port) if delay else (b.port, a.port)
    try:
        for trial in range(20):
            a.proc.stdin.write(f"connect 127.0.0.1 {to_b}\n".encode())
            b.proc.stdin.write(f"connect 127.0.0.1 {to_a}\n".encode())
            a.proc.stdin.flush()
            b.proc.stdin.flush()
            # Both end with one connection, the same one: one side says "you connected",
            # the other "it connected". (A side may list its own connect for a moment
            # before the other hello arrives and the rule swaps it, unseen: poll.)
            wait_until(lambda: _kinds(a, b, trial) == ["it", "you"], timeout=5,
                       interval=0.05, message=f"one connection, seen alike (trial {trial})")
            peer_id = _only_id(a)
            a.type(f"send {peer_id} ping {trial}")
            b.wait_for(rf"message from peer \d+ \([^)]*\): ping {trial}\n")
            a.type(f"terminate {peer_id}")
            b.wait_for(r"closed the connection\n")
            a.wait_for(r"closed the connection to peer")
        for p in (a, b):
            assert "error" not in p.text("err"), p.text("err")
            # Every "closed" was one of our terminates, never a duplicate going away.
            assert p.text().count("closed the connection") == 20
    finally:
        for proxy in proxies:
            proxy.close()


def _kinds(a, b, trial) -> list:
    kinds = []
    for p in (a, b):
        p.type("list")
        rows = p.wait_for(r"id +name +address +connection +trust\n((?: *\d+ .*\n)+)")
        assert len(rows.group(1).splitlines()) == 1, (trial, rows.group(1))
        kinds.append(re.search(r"(you|it) connected", rows.group(1)).group(1))
    return sorted(kinds)


def _only_id(proc) -> str:
    proc.type("list")
    return proc.wait_for(r"\n *(\d+)  - +127\.0\.0\.1:").group(1)


def test_a_client_that_says_hi_and_hangs_up_at_once_is_shown(chat):
    a = chat("0", *LOCAL)
    with socket.create_connection(("127.0.0.1", a.port)) as s:   # printf hi | nc -N
        s.sendall(b"hi")
        s.shutdown(socket.SHUT_WR)
    a.wait_for(r"peer 1 \(127\.0\.0\.1:\d+\) connected to you \(a plain TCP client[^)]*\)\n"
               r"message from peer 1 \(127\.0\.0\.1:\d+\): hi\n"
               r"peer 1 \(127\.0\.0\.1:\d+\) closed the connection\n")


def test_a_banner_without_newline_is_shown_before_the_close(chat):
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        a = chat("0", *LOCAL)
        a.type(f"connect 127.0.0.1 {srv.getsockname()[1]}")
        conn, _ = srv.accept()
        conn.sendall(b"220 welcome, no newline")
        assert recv_line(conn).startswith(b"\x01HELLO ")   # it read what we said, then left
        conn.close()
        a.wait_for(r"connected to peer 1 \([^)]*\) \(it is not chat\.py[^)]*\)\n"
                   r"message from peer 1 \([^)]*\): 220 welcome, no newline\n"
                   r"peer 1 \([^)]*\) closed the connection\n")
    assert "error" not in a.text("err")


@pytest.mark.parametrize("hello,reply,notice", [
    (b"\x01HELLO chat/2 port=\xd9\xa8\xd9\xa0\xd9\xa8\xd9\xa0 node=0123456789abcdef "
     b"heartbeat=15000\n", b"\x01REFUSE malformed", r"sent a malformed hello \(port is not a number\)"),
    (b"\x01HELLO chat/2 port=+22 node=0123456789abcdef heartbeat=15000\n",
     b"\x01REFUSE malformed", r"sent a malformed hello \(port is not a number\)"),
    (b"\x01HELLO chat/2 port=80 port=81 node=0123456789abcdef heartbeat=15000\n",
     b"\x01REFUSE malformed", r"sent a malformed hello \(port appears twice\)"),
    (b"\x01HELLO chat/1 port=8080 node=0123456789abcdef\n", b"\x01REFUSE version chat/2",
     r"speaks another version of the chat protocol"),
])
def test_a_malformed_hello_is_refused_with_one_notice(chat, hello, reply, notice):
    a = chat("0", *LOCAL)
    with socket.create_connection(("127.0.0.1", a.port), timeout=5) as s:
        s.sendall(hello + b"more after it\n")
        assert recv_line(s) == reply
    a.wait_for(rf"refused a connection from 127\.0\.0\.1:\d+: it {notice}\n")
    a.type("list")
    a.wait_for(r"no connections")
    assert "more after it" not in a.text()


def test_an_old_peer_is_told_which_versions_we_speak(chat):
    a = chat("0", *LOCAL)
    with socket.create_connection(("127.0.0.1", a.port), timeout=5) as s:
        s.sendall(b"\x01HELLO chat/1 port=8080 node=0123456789abcdef\n")
        assert recv_line(s) == b"\x01REFUSE version chat/2"


def test_already_connected_names_our_own_id_for_the_peer(chat):
    a, b, c = chat("0", *LOCAL), chat("0", *LOCAL), chat("0", *LOCAL)
    a.type(f"connect 127.0.0.1 {c.port}")
    a.wait_for(r"connected to peer 1 ")
    b.type(f"connect 127.0.0.1 {a.port}")                  # a's peer 2; b's peer 1
    a.wait_for(rf"peer 2 \(127\.0\.0\.1:{b.port}\) connected to you")
    a.type(f"connect 127.0.0.1 {b.port}")
    a.wait_for(rf"already connected to 127\.0\.0\.1:{b.port} as peer 2\n")
    b.type(f"connect localhost {a.port}")
    b.wait_for(rf"already connected to 127\.0\.0\.1:{a.port} as peer 1\n")


def test_silent_sockets_cannot_lock_anyone_out(chat):
    a = chat("0", *LOCAL)
    silent = []
    try:
        for _ in range(200):                   # one host opens 200 connections, says nothing
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", a.port))
            silent.append(s)
        a.wait_for(r"refused a connection from 127\.0\.0\.2:\d+: that address already has "
                   r"10 connections")
        b = chat("0", *LOCAL)                  # a real peer, from another address
        b.type(f"connect 127.0.0.1 {a.port}", "send 1 still welcome")
        a.wait_for(r"message from peer \d+ \(127\.0\.0\.1:\d+\): still welcome\n")
        # And when the table itself is full, a newcomer is told why.
        d = chat("0", *LOCAL, "--max-peers", "11")
        for i in range(11):                     # eleven hosts, one silent connection each
            s = socket.socket()
            s.bind((f"127.0.0.{10 + i}", 0))
            s.connect(("127.0.0.1", d.port))
            silent.append(s)
        # Queued before b's, so accepted first: still in their handshake, they count.
        b.type(f"connect 127.0.0.1 {d.port}")
        b.wait_for(rf"error: could not connect to 127\.0\.0\.1:{d.port}: that peer is full "
                   r"\(11 connections\)", stream="err")
    finally:
        for s in silent:
            s.close()


@pytest.mark.slow
def test_a_peer_over_a_slow_link_is_recognised_and_keeps_its_heartbeats(chat):
    b = chat("0", *LOCAL, "--heartbeat", "1")
    proxy = DelayProxy(b.port, 0.6)                        # 1.2 s round trip
    try:
        a = chat("0", *LOCAL, "--heartbeat", "1")
        a.type(f"connect 127.0.0.1 {proxy.port}")
        a.wait_for(r"connected to peer 1 ")
        started = time.monotonic()
        while time.monotonic() - started < 10:
            a.type("send 1 over the slow link")
            b.wait_for(r"message from peer 1 \([^)]*\): over the slow link\n", timeout=5)
            a.drain()
        for p in (a, b):
            assert "HELLO" not in p.text() and "PING" not in p.text()
            assert "dropped" not in p.text() and "closed" not in p.text()
        # The side that dialled waits 3 s for the answer to its hello, more than this
        # link's round trip: it is never listed as a plain listener, even for a moment.
        assert "after all" not in a.text()
        a.type("list")
        a.wait_for(r"\n +1  - +127\.0\.0\.1:\d+ +you connected +\S.*\n")   # not "not chat.py"
    finally:
        proxy.close()


@pytest.mark.slow
def test_different_heartbeats_never_drop_a_healthy_peer(chat):
    a = chat("0", *LOCAL, "--heartbeat", "1")
    b = chat("0", *LOCAL)                                   # the default, 15 s
    a.type(f"connect 127.0.0.1 {b.port}")
    a.wait_for(r"connected to peer 1 ")
    deadline = time.monotonic() + 20

    def healthy_until_the_deadline():
        for p in (a, b):
            p.drain()
            assert "dropped" not in p.text() and "closed" not in p.text(), p.text()
        return time.monotonic() >= deadline
    wait_until(healthy_until_the_deadline, timeout=30, interval=0.2,
               message="20 s with both peers connected")
    a.type("send 1 still here")
    b.wait_for(r"message from peer 1 \([^)]*\): still here\n")

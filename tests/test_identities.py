"""Identities, encryption and trust, end to end: real processes, real sockets, real attacks."""

from __future__ import annotations

import re
import shutil
import socket
import stat
import sys

import pytest

from helpers import ChatProcess, DelayProxy, free_port
from peerkit import ManInTheMiddle, WirePeer, make_identity

LOCAL = ["--host", "127.0.0.1"]
ID = r"[A-Z2-7]{7}(?:-[A-Z2-7]{7}){7}"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def my_id(proc: ChatProcess) -> str:
    proc.type("myid")
    return proc.wait_for(rf"your ID: ({ID})\n").group(1)


def connect(src: ChatProcess, port: int, peer_id: int = 1) -> None:
    src.type(f"connect 127.0.0.1 {port}")
    src.wait_for(rf"connected to peer {peer_id} ")


def test_two_peers_encrypt_by_default_and_a_wiretap_sees_no_message(chat, homes):
    a, b = chat("0", *LOCAL, *homes("alice")), chat("0", *LOCAL, *homes("bob"))
    tap = DelayProxy(b.port, 0.0)
    try:
        connect(a, tap.port)
        b.wait_for(r"peer 1 \([^)]*\) connected to you")
        a.type("send 1 the secret password is swordfish")
        b.wait_for(r"message from peer 1 \([^)]*\): the secret password is swordfish\n")
        b.type("send 1 and the reply is marlin")
        a.wait_for(r"the reply is marlin\n")
        for secret in (b"swordfish", b"marlin", b"heartbeat=", b"node="):
            assert secret not in tap.seen, secret     # only the certificate hellos are clear
        assert b"\x01HELLO chat/2 cert=" in tap.seen
        a.type("list")
        a.wait_for(rf"you connected  encrypted {my_id(b)[:7]}\n")
    finally:
        tap.close()


def test_myid_is_stable_across_restarts_and_files_are_private(chat, homes, tmp_path):
    first = chat("0", *LOCAL, *homes("carol"))
    shown = my_id(first)
    first.type("exit")
    assert first.wait_exit() == 0
    again = chat("0", *LOCAL, *homes("carol"))
    assert my_id(again) == shown
    folder = tmp_path / "carol"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in (folder / "identity").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_two_peers_started_at_once_with_a_fresh_home_end_with_one_identity(chat, tmp_path):
    home = ["--home", str(tmp_path / "shared")]
    a, b = chat("0", *LOCAL, *home), chat("0", *LOCAL, *home)   # both make it at once
    assert my_id(a) == my_id(b)
    # Same user, two processes: still told apart, so connecting them works.
    connect(a, b.port)
    a.type("send 1 from my other terminal")
    b.wait_for(r"from my other terminal\n")


def test_a_man_in_the_middle_shows_another_id_and_a_trusted_peer_warns(chat, homes, tmp_path):
    bob_port = free_port()
    a = chat("0", *LOCAL, *homes("alice"))
    b = chat(str(bob_port), *LOCAL, *homes("bob"))
    bob_id = my_id(b)
    connect(a, bob_port)
    a.type("trust 1 bob")
    a.wait_for(rf"you trust peer 1 \(127\.0\.0\.1:{bob_port}\) as bob \(ID {bob_id}\)")
    a.type("send 1 hello bob")
    b.wait_for(r"message from peer 1 \([^)]*\): hello bob\n")
    a.wait_for(r"sent to peer 1 =bob= ")
    b.type("exit")
    b.wait_exit()
    a.wait_for(r"peer 1 =bob= \([^)]*\) left")
    # Bob comes back elsewhere; Mallory sits at his old address and relays.
    b2 = chat("0", *LOCAL, *homes("bob"))
    mallory = make_identity(tmp_path / "mallory")
    mitm = ManInTheMiddle(bob_port, b2.port, mallory)
    try:
        a.type(f"connect 127.0.0.1 {bob_port}")
        try:
            a.wait_for(rf"WARNING: IDENTITY CHANGED for bob at 127\.0\.0\.1:{bob_port}!", "err")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- the man in the middle: {mitm.errors}") from None
        a.wait_for(rf"you trust bob as ID {bob_id}; this peer shows ID {mallory.id}", "err")
        a.wait_for(r"connected to peer 2 \(")                 # shown, but not as bob
        a.type("list")
        a.wait_for(rf"you connected  encrypted {mallory.short_id}\n")
        a.type("send 2 are you bob?")
        b2.wait_for(r"are you bob\?\n")
        assert "=bob=" not in a.text().split("as peer 2 ...", 1)[1]
    finally:
        mitm.close()


def test_the_squatting_attack_fails_and_the_real_peers_still_connect(chat, homes, tmp_path):
    a = chat("0", *LOCAL, *homes("alice"))
    b = chat("0", *LOCAL, *homes("bob"))
    mallory = make_identity(tmp_path / "mallory")
    # Mallory learns bob's instance id by talking to bob once ...
    probe = WirePeer.connect(b.port, mallory, knock=False)   # as a chat.py before the knock
    probe.hello(port=1)
    bob_node = probe.their_hello().node_id
    probe.close()
    # ... and claims to be bob at alice: bob's port, bob's instance id.
    squat = WirePeer.connect(a.port, mallory)
    squat.hello(port=b.port, node_id=bob_node)
    assert squat.their_hello().port == a.port
    a.wait_for(rf"peer \d+ \(127\.0\.0\.1:{b.port}\) connected to you")
    # The real bob connects to alice (his peer 1 was mallory's probe): it works.
    connect(b, a.port, peer_id=2)
    a.wait_for(rf"peer \d+ \(127\.0\.0\.1:{b.port}\) connected to you")
    b.type("send 2 it is really me")
    a.wait_for(r"it is really me\n")
    a.type("list")
    table = a.wait_for(r"id +name +address.*\n((?:.*\n){2})").group(1)
    assert mallory.short_id in table and my_id(b)[:7] in table
    squat.close()


def test_a_trusted_peer_offered_without_encryption_is_refused(chat, homes, tmp_path):
    bob_port = free_port()
    a = chat("0", *LOCAL, *homes("alice"))
    b = chat(str(bob_port), *LOCAL, *homes("bob"))
    connect(a, bob_port)
    a.type("trust 1 bob")
    a.wait_for(r"you trust peer 1 ")
    b.type("exit")
    b.wait_exit()
    # Someone without an identity (no openssl, fresh home) now answers at bob's address.
    plain = chat(str(bob_port), *LOCAL, *homes("plain"), env={"PATH": _path_without_openssl(
        tmp_path)})
    plain.wait_for(r"no identity \(the openssl command", "err")
    a.type(f"connect 127.0.0.1 {bob_port}")
    a.wait_for(rf"WARNING: IDENTITY CHANGED for bob at 127\.0\.0\.1:{bob_port}!", "err")
    a.wait_for(rf"error: could not connect to 127\.0\.0\.1:{bob_port}: ", "err")
    a.type("list")
    a.wait_for(r"no connections")


def test_trusted_only_refuses_strangers_and_plain_clients_and_admits_trusted_peers(chat, homes):
    a = chat("0", *LOCAL, *homes("alice"))
    b = chat("0", *LOCAL, *homes("bob"))
    connect(b, a.port)
    a.wait_for(r"connected to you")
    a.type("trust 1 bob")
    a.wait_for(r"you trust ")
    a.type("exit")
    a.wait_exit()
    strict = chat("0", *LOCAL, *homes("alice"), "--trusted-only")
    connect(b, strict.port, peer_id=2)
    strict.wait_for(r"peer 1 =bob= \([^)]*\) connected to you")
    stranger = chat("0", *LOCAL, *homes("stranger"))
    stranger.type(f"connect 127.0.0.1 {strict.port}")
    stranger.wait_for(rf"error: could not connect to 127\.0\.0\.1:{strict.port}: it accepts "
                      r"only identities it trusts", "err")
    strict.wait_for(r"refused a connection from 127\.0\.0\.1:\d+: not an identity you trust")
    with socket.create_connection(("127.0.0.1", strict.port), timeout=5) as nc:
        nc.sendall(b"hi, plain here\n")
        nc.settimeout(5)
        assert nc.recv(100) == b"\x01REFUSE untrusted\n"
    strict.type(f"connect 127.0.0.1 {stranger.port}")
    strict.wait_for(rf"error: could not connect to 127\.0\.0\.1:{stranger.port}: not an "
                    r"identity you trust", "err")
    assert "hi, plain here" not in strict.text()


def test_flipped_bytes_in_a_record_drop_only_that_connection(chat, homes):
    a = chat("0", *LOCAL, *homes("alice"))
    b = chat("0", *LOCAL, *homes("bob"))
    c = chat("0", *LOCAL, *homes("carol"))
    tap = DelayProxy(b.port, 0.0)
    try:
        connect(a, tap.port)
        connect(a, c.port, peer_id=2)
        b.wait_for(r"connected to you")
        tap.flip_at = len(tap.seen) + 2000     # somewhere in what comes next from bob
        b.type(*[f"send 1 record {i} " + "x" * 80 for i in range(40)])
        a.wait_for(r"dropped peer 1 \([^)]*\): its encrypted stream was damaged")
        a.type("send 2 still here")
        c.wait_for(r"message from peer 1 \([^)]*\): still here\n")
        shown = re.findall(r"record (\d+) ", a.text())
        assert shown == [str(i) for i in range(len(shown))]    # a prefix, never garbage
        assert "\ufffd" not in a.text()
    finally:
        tap.close()


def test_without_openssl_one_line_says_so_and_connections_are_plain(chat, tmp_path):
    env = {"PATH": _path_without_openssl(tmp_path)}
    a = chat("0", *LOCAL, "--home", str(tmp_path / "fresh"), env=env)
    a.wait_for(r"^(?:.*): note: no identity \(the openssl command, which makes the key, was "
               r"not found\); connections will not be encrypted\n\Z", "err")
    b = chat("0", *LOCAL, "--home", str(tmp_path / "bob"))
    connect(a, b.port)
    a.type("send 1 in the clear", "list", "myid")
    b.wait_for(r"in the clear\n")
    a.wait_for(r"you connected  plain\n")
    a.wait_for(r"error: no identity: connections are not encrypted", "err")


def _path_without_openssl(tmp_path) -> str:
    """A PATH with python but no openssl on it."""
    folder = tmp_path / "bin-without-openssl"
    folder.mkdir(exist_ok=True)
    link = folder / "python3"
    if not link.exists():
        link.symlink_to(sys.executable)
    return str(folder)


def test_trust_takes_the_announced_name_unless_given_one(chat, homes):
    a = chat("0", *LOCAL, *homes("alice"))
    b = chat("0", *LOCAL, *homes("bob"), "--name=bob")
    c = chat("0", *LOCAL, *homes("carol"))
    connect(a, b.port)
    connect(a, c.port, peer_id=2)
    a.type("trust 1", "trust 2")
    a.wait_for(r"you trust peer 1 bob \([^)]*\) as bob \(ID ")
    a.wait_for(r"error: it announces no name: give it one, trust <id> <name>", "err")


def test_a_trusted_peer_met_at_a_new_address_is_remembered_there(chat, homes):
    a = chat("0", *LOCAL, *homes("alice"))
    b = chat("0", *LOCAL, *homes("bob"))
    connect(a, b.port)
    a.type("trust 1 bob")
    a.wait_for(rf"you trust peer 1 \(127\.0\.0\.1:{b.port}\) as bob")
    b2 = chat("0", *LOCAL, *homes("bob"))              # bob again, on another port
    connect(a, b2.port, peer_id=2)
    a.type("trust")
    a.wait_for(rf"bob +{ID}  last seen at 127\.0\.0\.1:{b2.port}\n")

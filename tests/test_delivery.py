"""Delivered means received, end to end: real processes, kill -9, restarts, slow links.

Every wait polls output with a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading

import pytest

from helpers import ChatProcess, DelayProxy, free_port, run_chat, wait_until

LOCAL = ["--host", "127.0.0.1"]

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def befriend(a: ChatProcess, b: ChatProcess) -> None:
    """A connects to B, and each trusts the other: A calls B bob, B calls A alice."""
    a.type(f"connect 127.0.0.1 {b.port}")
    a.wait_for(r"connected to peer 1 ")
    b.wait_for(r"peer 1 .* connected to you")
    a.type("trust 1 bob")
    a.wait_for(r"you trust peer 1 .* as bob")
    b.type("trust 1 alice")
    b.wait_for(r"you trust peer 1 .* as alice")


def numbers_shown(*outputs: str) -> list[int]:
    return [int(n) for text in outputs for n in re.findall(r": m(\d{5})\n", text)]


def start(chat, home: list, port: int = 0, *more: str) -> ChatProcess:
    return chat(str(port), *LOCAL, *home, "--stay", *more)


def wait_for_count(proc: ChatProcess, count: int, timeout: float = 30) -> None:
    try:
        wait_until(lambda: len(numbers_shown(proc.text())) >= count, timeout=timeout,
                   message=f"{count} messages shown by pid {proc.pid}")
    except AssertionError as exc:
        events = [line for line in proc.text().splitlines() if "message from" not in line]
        raise AssertionError(f"{exc}: {len(numbers_shown(proc.text()))} shown; its other "
                             f"lines: {events[-20:]}; stderr: {proc.text('err')[-2000:]}"
                             ) from None


def streaming(chat, homes) -> tuple[ChatProcess, ChatProcess]:
    """Alice and bob, friends; alice is sending bob 10,000 numbered messages, of which
    bob has shown at least 3,000."""
    a = start(chat, homes("alice"))
    b = start(chat, homes("bob"))
    befriend(a, b)
    a.write("".join(f"send bob m{n:05d}\n" for n in range(10_000)).encode())
    wait_for_count(b, 3000)
    return a, b


def test_receiver_killed_mid_stream_shows_every_message_in_order(chat, homes):
    """Nothing lost, nothing out of order. A number counts as seen once stdout has taken
    its line and it is stored; killed between the two (an instant), B shows those lines
    again at the restart: the only repeats allowed, right at the seam."""
    a, b = streaming(chat, homes)
    b_port = b.port
    b.proc.kill()                                  # kill -9, mid-stream
    b.proc.wait(timeout=10)
    before = numbers_shown(b.text())
    assert len(before) < 10_000                    # it died with messages still coming
    assert before == list(range(len(before)))
    a.wait_for(r"lost the connection to peer 1|peer 1 .* closed the connection")
    b2 = start(chat, homes("bob"), b_port)
    # A reconnects by itself (B's last address): one line says so, not one per try.
    wait_until(lambda: 9999 in numbers_shown(b2.text()), timeout=30,
               message="the last message shown after the restart")
    after = numbers_shown(b2.text())
    repeated = after.index(len(before)) if len(before) in after else len(after)
    assert after[:repeated] == before[len(before) - repeated:]
    assert before + after[repeated:] == list(range(10_000))
    # When B died, A said what it had not acknowledged (and kept it).
    assert re.search(r"error: \d+ messages to peer 1 =bob= \([^)]*\) not yet delivered; "
                     r"they stay queued for the next connection", a.text("err"))
    said = len(a.text("err"))
    a.type("exit")
    assert a.wait_exit(timeout=20) == 0            # 0: every message acknowledged
    assert "not yet delivered" not in a.text("err")[said:]
    assert a.text().count("reconnecting to =bob=") + a.text().count("reconnecting to bob") == 1


def test_sender_killed_mid_stream_resends_the_unacknowledged_tail_once(chat, homes):
    a, b = streaming(chat, homes)
    a_port = a.port
    a.proc.kill()
    a.proc.wait(timeout=10)
    at_kill = len(numbers_shown(b.text()))
    a2 = start(chat, homes("alice"), a_port)
    # The restarted A has what it stored of the 10,000: every message it stored and B
    # has not acknowledged goes again, and B shows none of them twice.
    a2.type("history bob 1")
    last = int(a2.wait_for(r"to =?bob=?: m(\d{5})").group(1))
    wait_for_count(b, last + 1)
    # B may have more than A stored: those A wrote in the instant before it died. B's
    # first acknowledgement tells A, which numbers its next message after them.
    a2.type("send bob after-the-restart")
    b.wait_for(r": after-the-restart\n")
    shown = numbers_shown(b.text())
    assert shown == list(range(len(shown)))        # each once, in order, no gap
    assert len(shown) >= max(last + 1, at_kill)
    a2.type("exit")
    assert a2.wait_exit(timeout=20) == 0


def test_an_offline_friend_gets_the_message_once_after_both_restart(chat, homes):
    a = start(chat, homes("alice"))
    b = start(chat, homes("bob"))
    befriend(a, b)
    a_port, b_port = a.port, b.port
    b.type("exit")
    assert b.wait_exit() == 0
    a.wait_for(r"peer 1 .* (left|closed)")
    a.type("send bob hello-offline")
    a.wait_for(r"queued for bob \(not connected; sent when it is\): hello-offline")
    a.type("exit")
    assert a.wait_exit() == 3                      # 3: a message is not delivered yet
    assert "1 message to bob not yet delivered; it stays queued" in a.text("err")
    a2 = start(chat, homes("alice"), a_port)
    b2 = start(chat, homes("bob"), b_port)
    a2.wait_for(r"connected to peer \d+ =bob=|peer \d+ =bob= .* connected to you", timeout=10)
    b2.wait_for(r": hello-offline\n", timeout=5)
    a2.wait_for(r"delivered to peer \d+ =bob= \([^)]*\): hello-offline")
    a2.type("history bob")
    a2.wait_for(r"to bob: hello-offline  \[delivered\]")
    b2.type("exit")
    b2.wait_exit()
    assert b2.text().count("hello-offline") == 1


class NeverAcks:
    """A fake chat.py: it says a delivery hello (no identity, so no TLS) and what it has
    of ours (nothing, as a chat.py does first), then reads and ignores everything, never
    acknowledging."""

    def __init__(self, says_got: bool = True, hangs_up_on: bytes | None = None) -> None:
        self.says_got = says_got            # False: not even its first GOT (a broken peer)
        self.hangs_up_on = hangs_up_on      # closes once it has read this
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.heard = b""
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            conn.settimeout(20)
            got = "\x01GOT - 0\n" if self.says_got else ""
            conn.sendall(f"\x01HELLO chat/2 port={self.port} node={'ab' * 8} "
                         f"heartbeat=15000 delivery=1\n{got}".encode())
            try:
                while chunk := conn.recv(65536):
                    self.heard += chunk
                    if self.hangs_up_on is not None and self.hangs_up_on in self.heard:
                        break
            except OSError:
                pass

    def close(self) -> None:
        self.server.close()
        self._thread.join(timeout=5)


def test_a_script_exits_0_only_after_the_ack_and_3_when_none_comes(chat, homes, tmp_path):
    b = start(chat, homes("bob"))
    proxy = DelayProxy(b.port, 1.0)                # 1 s each way
    try:
        done = run_chat("0", *LOCAL, *homes("alice"), "--flush-timeout", "10",
                        input=f"connect 127.0.0.1 {proxy.port}\nsend 1 hi\nexit\n".encode(),
                        timeout=60)
        assert done.returncode == 0, done.stderr
        assert b"sent to peer 1" in done.stdout and done.stderr == b""
        b.wait_for(r": hi\n")
    finally:
        proxy.close()
    fake = NeverAcks()
    try:
        done = run_chat("0", *LOCAL, "--home", str(tmp_path / "plain"), "--flush-timeout", "1",
                        input=f"connect 127.0.0.1 {fake.port}\nsend 1 hi\nexit\n".encode(),
                        timeout=30, env={"PATH": ""})
        assert done.returncode == 3, done.stderr
        assert re.search(rb"error: 1 message to peer 1 \(127\.0\.0\.1:\d+\) was not delivered",
                         done.stderr), done.stderr
    finally:
        fake.close()
    assert b"hi\n" in fake.heard


def test_a_message_lost_while_running_makes_the_exit_status_3_too(chat, tmp_path):
    fake = NeverAcks(hangs_up_on=b"hi\n")
    try:
        a = chat("0", *LOCAL, "--home", str(tmp_path / "plain"), env={"PATH": ""})
        a.type(f"connect 127.0.0.1 {fake.port}", "send 1 hi")
        a.wait_for(r"error: 1 message to peer 1 \(127\.0\.0\.1:\d+\) was not delivered", "err")
        a.type("exit")
        assert a.wait_exit() == 3
    finally:
        fake.close()


@pytest.mark.slow
def test_a_peer_that_never_says_what_it_has_is_dropped_and_the_script_ends(tmp_path):
    fake = NeverAcks(says_got=False)
    try:
        done = run_chat("0", *LOCAL, "--home", str(tmp_path / "plain"), "--flush-timeout", "1",
                        input=f"connect 127.0.0.1 {fake.port}\nsend 1 hi\nexit\n".encode(),
                        timeout=30, env={"PATH": ""})
        assert done.returncode == 3, done.stderr
        assert re.search(rb"dropped peer 1 \(127\.0\.0\.1:\d+\): it promised receipts but "
                         rb"never said what it has of ours", done.stdout + done.stderr)
        assert b"1 message to peer 1" in done.stderr
    finally:
        fake.close()


def test_history_survives_a_restart_and_no_history_leaves_no_file(chat, homes, tmp_path):
    a = start(chat, homes("alice"))
    b = start(chat, homes("bob"))
    befriend(a, b)
    for n in range(15):                            # 30 messages, taking turns
        a.type(f"send bob a{n:02d}")
        b.wait_for(rf": a{n:02d}\n")
        b.type(f"send alice b{n:02d}")
        a.wait_for(rf": b{n:02d}\n")
    for p in (a, b):
        p.type("exit")
        assert p.wait_exit() == 0
    a2 = start(chat, homes("alice"))
    a2.type("history")
    lines = [a2.wait_for(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  (from|to) \S+: [ab]\d\d.*\n").group(0)
             for _ in range(20)]
    assert len(lines) == 20
    assert sum("to bob: " in line and "[delivered]" in line for line in lines) == 10
    assert sum("from bob: " in line for line in lines) == 10
    a2.type("history bob 5", "myport")
    a2.wait_for(r"listening port")
    recent = re.findall(r"(?:from|to) bob: ([ab]\d\d)", a2.text())[-5:]
    assert recent == ["b12", "a13", "b13", "a14", "b14"]
    plain = tmp_path / "nohistory"
    c = chat("0", *LOCAL, "--home", str(plain), "--no-history", "--stay")
    c.type(f"connect 127.0.0.1 {a2.port}")
    c.wait_for(r"connected to peer 1")
    c.type("send 1 remember-nothing", "history")
    c.wait_for(r"to \S+: remember-nothing")
    c.type("exit")
    assert c.wait_exit() == 0
    assert not any(name.startswith(("chat.db", "history")) for name in os.listdir(plain))


def test_a_garbage_database_is_moved_aside_with_one_warning(chat, tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "chat.db").write_bytes(b"this is not a database\n" * 100)
    a = chat("0", *LOCAL, "--home", str(home), "--stay")
    a.wait_for(r"error: the message store was damaged and was moved aside", "err")
    a.type("myport")
    a.wait_for(r"listening port")
    assert a.text("err").count("error:") == 1
    assert any(name.startswith("chat.db.broken-") for name in os.listdir(home))
    assert oct((home / "chat.db").stat().st_mode & 0o777) == "0o600"


def _mount_small(path, *options: str) -> None:
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(("size=1m", *options)), "tmpfs",
                    str(path)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a small file system")
def test_a_full_disk_costs_one_warning_and_nothing_shown_is_lost(chat, tmp_path):
    home = tmp_path / "full"
    _mount_small(home)
    try:
        a = chat("0", *LOCAL, "--home", str(home), "--stay")
        b = chat("0", *LOCAL, "--stay", "--home", str(tmp_path / "b"))
        b.type(f"connect 127.0.0.1 {a.port}")
        a.wait_for(r"peer 1 .* connected to you")
        with open(home / "filler", "wb") as filler:       # the disk is full from here on
            try:
                while True:
                    filler.write(b"x" * 65536)
                    filler.flush()
            except OSError:
                pass
        for n in range(200):
            b.type(f"send 1 still-here-{n:03d}")
        a.wait_for(r": still-here-199\n")
        assert re.findall(r": still-here-(\d+)\n", a.text()) == [f"{n:03d}" for n in range(200)]
        errors = a.text("err")
        assert 1 <= errors.count("error:") <= 2, errors      # the store, the history
        assert "Traceback" not in errors
        a.type("history 1 3")
        a.wait_for(r"from \S+: still-here-199")           # kept in memory
        a.type("exit")
        assert a.wait_exit() == 0
        b.type("exit")
        assert b.wait_exit() == 0
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a file system read-only")
def test_a_read_only_home_costs_one_warning(chat, tmp_path):
    # (Linux refuses to remount a file system read-only while chat.py holds files open
    # for writing, so the home is read-only from the start, identity made beforehand.)
    home = tmp_path / "ro"
    _mount_small(home)
    try:
        made = chat("0", *LOCAL, "--home", str(home), "--no-history")   # makes the identity
        made.type("exit")
        assert made.wait_exit() == 0
        subprocess.run(["mount", "-o", "remount,ro", str(home)], check=True)
        a = chat("0", *LOCAL, "--home", str(home), "--stay")
        b = chat("0", *LOCAL, "--stay", "--home", str(tmp_path / "b"))
        b.type(f"connect 127.0.0.1 {a.port}", "send 1 read-only-hello")
        a.wait_for(r": read-only-hello\n")
        errors = a.text("err")
        assert errors.count("error:") <= 2 and "Traceback" not in errors, errors
        a.type("exit")
        assert a.wait_exit() == 0
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)

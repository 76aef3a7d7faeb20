"""chat.py at a real terminal (a pty): the input line survives incoming messages."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import time

import pytest

from helpers import CHAT, ROOT, PtyScreen, popen_chat, recv_line

ESC = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class PtyChat(PtyScreen):
    """chat.py with a pty as its stdin, stdout and stderr."""

    def __init__(self, *args, columns=80, env=None, unset=()):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        self.modes_before = termios.tcgetattr(slave)
        full_env = dict(os.environ, TERM="xterm")
        full_env.pop("NO_COLOR", None)
        full_env.update(env or {})
        for name in unset:
            full_env.pop(name, None)
        self.proc = popen_chat(["0", "--host", "127.0.0.1", *args], stdin=slave,
                               stdout=slave, stderr=slave, env=full_env, new_session=True)
        self.slave = slave
        self.screen = b""
        self.port = int(self.wait_for(rb"listening on 127\.0\.0\.1:(\d+)").group(1))

    def write_all(self, data: bytes, timeout=30):
        """Write a lot through the pty, reading what comes back meanwhile (no deadlock)."""
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        os.set_blocking(self.master, False)
        try:
            while view:
                assert time.monotonic() < deadline, "chat.py stopped reading"
                readable, writable, _ = select.select([self.master], [self.master], [], 0.05)
                if readable:
                    self.read(0)
                if writable:
                    try:
                        view = view[os.write(self.master, view[:4096]):]
                    except BlockingIOError:
                        pass
        finally:
            os.set_blocking(self.master, True)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def term():
    started = []

    def start(*args, **kw):
        p = PtyChat(*args, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()


def test_a_message_arriving_mid_typing_is_printed_above_the_input_line(term):
    t = term()
    t.wait_for(rb"> ")
    with socket.create_connection(("127.0.0.1", t.port), timeout=5) as raw:
        raw.sendall(b"first\n")
        t.wait_for(rb"message from peer 1 \(127\.0\.0\.1:\d+\):(\x1b\[0m)? first")
        t.type(b"send 1 half typ")
        t.wait_for(rb"send 1 half typ")
        mark = len(t.screen)
        raw.sendall(b"hello from raw\n")
        m = t.wait_for(rb"hello from raw", start=mark)
        # After the message, the prompt and the half-typed text are drawn again.
        t.wait_for(rb"\r\x1b\[K> send 1 half typ", start=m.end())
        erased = t.screen.rfind(b"\r\x1b[K", mark, m.start())
        assert erased >= 0, "the input line was not erased before the message"
        t.type(b"ed text\r")
        buf = bytearray()
        assert recv_line(raw, buf=buf) == b"half typed text"
    t.type(b"exit\r")
    assert t.wait_exit() == 0
    assert t.modes_now() == t.modes_before


def test_editing_keys_history_and_completion(term):
    t = term()
    with socket.create_connection(("127.0.0.1", t.port), timeout=5) as raw:
        raw.sendall(b"x\n")
        t.wait_for(rb"peer 1 ")
        # Tab completes the command and then the id ("1" or "all": one more key);
        # Left/Home/Ctrl-K edit in the middle.
        t.type(b"se\t1\t" + "héllo 日本 wörld".encode() + b"\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D"
               b"\x0b\x01\x1b[C\x1b[C\x1b[C\x1b[C\x1b[C\x1b[C\x1b[C\r")
        buf = bytearray()
        assert recv_line(raw, buf=buf) == "héllo 日本".encode()
        # Up brings it back; Ctrl-W deletes the last word (not the space before it),
        # Backspace one character each.
        t.type(b"\x1b[A\x17\x7f\x7fX\r")
        assert recv_line(raw, buf=buf) == "héllX".encode()
        # A second Tab lists the choices.
        t.type(b"my\t\t")
        t.wait_for(rb"myip  myport")
        t.type(b"\x15exit\r")
    assert t.wait_exit() == 0


def test_wide_input_longer_than_the_terminal_scrolls_sideways(term):
    t = term(columns=40)
    t.type(("send 1 " + "日" * 60).encode())
    t.wait_for(rb"\x1b\[\d+C")
    last = t.screen[t.screen.rfind(b"\r\x1b[K"):]
    shown = ESC.sub("", last.decode("utf-8", "replace")).replace("\r", "")
    assert shown.startswith("> ") and len(shown) - 2 <= 20   # 20 wide characters fit in 40
    t.type(b"\x03\x03")                                     # clear the line, then exit
    assert t.wait_exit() == 130
    assert t.modes_now() == t.modes_before


@pytest.mark.parametrize("how,status", [(b"\x04", 0), (b"\x03", 130), ("SIGTERM", 143)])
def test_terminal_modes_are_restored_on_every_way_out(term, how, status):
    t = term()
    t.wait_for(rb"> ")
    assert t.modes_now() != t.modes_before      # echo and line mode are off while it runs
    if how == "SIGTERM":
        t.proc.send_signal(signal.SIGTERM)
    else:
        t.type(how)
    assert t.wait_exit() == status
    assert t.modes_now() == t.modes_before


def test_colour_only_on_our_labels_and_never_with_no_color(term):
    t = term()
    with socket.create_connection(("127.0.0.1", t.port), timeout=5) as raw:
        raw.sendall(b"\x1b[31mred?\n")
        t.wait_for(rb"\x1b\[1;36mmessage from peer 1 \(127\.0\.0\.1:\d+\):\x1b\[0m \\x1b\[31mred\?")
    t2 = term(env={"NO_COLOR": "1"})
    with socket.create_connection(("127.0.0.1", t2.port), timeout=5) as raw:
        raw.sendall(b"plain\n")
        t2.wait_for(rb"message from peer 1 \(127\.0\.0\.1:\d+\): plain")
        assert b"\x1b[1;36m" not in t2.screen and b"\x1b[33m" not in t2.screen


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_rendered_screen_in_tmux(tmp_path):
    sock = f"chat-test-{os.getpid()}"
    tmux = ["tmux", "-L", sock]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run(tmux + ["new-session", "-d", "-x", "80", "-y", "10",
                           f"{sys.executable} {CHAT} {port} --host 127.0.0.1 --no-color"],
                   check=True, cwd=str(ROOT))
    try:
        def screen():
            return subprocess.run(tmux + ["capture-pane", "-p"], capture_output=True,
                                  text=True).stdout

        def wait(text):
            deadline = time.monotonic() + 10
            while text not in screen():
                assert time.monotonic() < deadline, screen()
                time.sleep(0.05)   # polling tmux; there is nothing to wait on
        wait("listening on")
        subprocess.run(tmux + ["send-keys", "-l", "send 1 half"], check=True)
        wait("> send 1 half")
        before = screen()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"incoming while you type\n")
            wait("incoming while you type")
            after = screen()
            print("SCREEN BEFORE\n" + before.rstrip() + "\nSCREEN AFTER\n" + after.rstrip())
            lines = [line for line in after.splitlines() if line.strip()]
            assert lines[-1] == "> send 1 half"
            assert lines[-2] == "message from peer 1 (127.0.0.1:%d): incoming while you type" \
                % raw.getsockname()[1]
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)

"""The screen as a person sees it: chat.py in tmux, read back with capture-pane.

tmux is a real terminal emulator (it re-wraps rows when it narrows, as most
terminals do), so these tests check what is on the screen, not which bytes
were written. The last test shows the same message through a pipe, untouched.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from helpers import CHAT, ROOT, free_port

NO_TMUX = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    def __init__(self, columns: int, rows: int, *args: str) -> None:
        self.port = free_port()
        self.base = ["tmux", "-u", "-L", f"chat-test-{os.getpid()}-{self.port}"]
        command = f"{sys.executable} {CHAT} {self.port} --host 127.0.0.1 --no-color"
        env = dict(os.environ, LANG="C.UTF-8", TERM="xterm")
        subprocess.run(self.base + ["-f", "/dev/null", "new-session", "-d", "-x",
                                    str(columns), "-y", str(rows), " ".join([command, *args])],
                       check=True, cwd=str(ROOT), env=env)
        subprocess.run(self.base + ["set-option", "-g", "window-size", "manual"],
                       capture_output=True)
        self.wait(lambda s: "listening on" in s)

    def screen(self) -> str:
        """What the pane shows, with the rows scrolled off its top (a narrower
        terminal pushes rows up) above it."""
        return subprocess.run(self.base + ["capture-pane", "-p", "-S", "-"],
                              capture_output=True, text=True, encoding="utf-8").stdout

    def rows(self) -> list[str]:
        return [row for row in self.screen().splitlines() if row.strip()]

    def wait(self, condition, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if condition(screen):
                return screen
            assert time.monotonic() < deadline, screen
            time.sleep(0.02)   # polling tmux: there is nothing to wait on

    def keys(self, text: str) -> None:
        subprocess.run(self.base + ["send-keys", "-l", text], check=True)

    def resize(self, columns: int) -> None:
        subprocess.run(self.base + ["resize-window", "-x", str(columns)], check=True)
        self.wait(lambda s: max(map(len, s.splitlines() or [""])) <= columns)

    def close(self) -> None:
        subprocess.run(self.base + ["kill-server"], capture_output=True)


@pytest.fixture
def tmux():
    started = []

    def start(*args, **kw):
        t = Tmux(*args, **kw)
        started.append(t)
        return t

    yield start
    for t in started:
        t.close()


@NO_TMUX
def test_shrinking_and_growing_the_terminal_leaves_no_stale_input_line(tmux):
    t = tmux(120, 12)
    # Output above fills the screen, as in use. (On an empty screen tmux keeps the
    # cursor's row when it re-wraps and pushes the rows above it into the scrollback,
    # where no program can reach them: the test would be of tmux, not of chat.py.)
    t.keys("help\r")
    t.wait(lambda s: "for more about one command" in s)
    typed = "send 1 " + "abcdefghij" * 5 + "xyz"           # 60 characters
    t.keys(typed)
    t.wait(lambda s: "> " + typed in s)

    def input_rows(screen):
        return [row for row in screen.splitlines() if "abcdefghij" in row or "xyz" in row]

    for columns in (40, 120, 30, 120):
        t.resize(columns)
        # The input line is drawn again (scrolled sideways when narrow) and is the only
        # row showing any of it: no copy of the old one above the prompt.
        room = columns - 3                  # the prompt, and a column for the cursor
        expected = "> " + typed[-room:]
        screen = t.wait(lambda s: s.rstrip().splitlines()[-1] == expected)
        rows = input_rows(screen)
        assert len(rows) == 1 and rows[0].startswith("> "), (columns, screen)
        assert screen.rstrip().splitlines()[-1] == rows[0]
    t.keys("\x15")            # Ctrl-U
    t.wait(lambda s: not input_rows(s))


@NO_TMUX
def test_a_peer_cannot_pad_a_message_into_a_line_of_ours(tmux):
    t = tmux(80, 12)
    with socket.create_connection(("127.0.0.1", t.port), timeout=5) as raw:
        prefix = f"message from peer 1 (127.0.0.1:{raw.getsockname()[1]}): "
        fake = "peer 1 (127.0.0.1:9090) left"
        text = "hi" + " " * (80 - len(prefix) - 2) + fake    # the rest would start a row
        raw.sendall(text.encode() + b"\n")
        screen = t.wait(lambda s: "left" in s)
        rows = t.rows()
        first = next(i for i, row in enumerate(rows) if row.startswith(prefix))
        assert rows[first + 1].startswith("  \u2506 "), screen
        assert not any(row.startswith(fake) for row in rows), screen
        # Wide characters take two columns: a row of them is cut at 80 columns too.
        raw.sendall("日本".encode() * 40 + b"\n")
        screen = t.wait(lambda s: s.count("\u2506") >= 3)
        for row in t.rows():
            width = sum(2 if "\u3000" <= ch <= "\u9fff" else 1 for ch in row)
            assert width <= 80, row
            assert row.startswith(("  \u2506 ", "message from", "listening", "peer 1", ">")), row


def test_through_a_pipe_a_long_message_stays_one_line_as_sent(chat):
    a = chat("0", "--host", "127.0.0.1")
    with socket.create_connection(("127.0.0.1", a.port), timeout=5) as raw:
        text = "hi" + " " * 200 + "peer 1 (127.0.0.1:9090) left " + "日本" * 50
        raw.sendall(text.encode() + b"\n")
        prefix = f"message from peer 1 (127.0.0.1:{raw.getsockname()[1]}): "
        a.wait_for("日本\n")
        assert (prefix + text + "\n").encode() in a.raw()
        assert "\u2506".encode() not in a.raw()
    a.type("exit")
    assert a.wait_exit() == 0

"""Every way out at a real terminal: modes restored, peers told, statuses as documented.

And Ctrl-Z: stopped for real with the terminal as we found it, taken back on SIGCONT.
"""

import fcntl
import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time

import pytest

from helpers import CHAT, ROOT, PtyScreen, popen_chat, wait_until

LOCAL = ("--host", "127.0.0.1")


class Pty(PtyScreen):
    """A command with a pty as its stdin, stdout and stderr (or stdin a pipe)."""

    def __init__(self, argv, stdin_pipe=False, stderr=None):
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.modes_before = termios.tcgetattr(self.slave)
        env = dict(os.environ, TERM="xterm", NO_COLOR="1")
        stdin = subprocess.PIPE if stdin_pipe else self.slave
        if argv[:2] == [sys.executable, CHAT]:
            self.proc = popen_chat(argv[2:], stdin=stdin, stdout=self.slave,
                                   stderr=stderr or self.slave, env=env, new_session=True)
        else:
            self.proc = subprocess.Popen(argv, stdin=stdin, stdout=self.slave,
                                         stderr=stderr or self.slave, cwd=str(ROOT), env=env,
                                         start_new_session=True)
        self.screen = b""
        self.port = int(self.wait_for(rb"listening on 127\.0\.0\.1:(\d+)").group(1))

    def state(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc.stdin:
            self.proc.stdin.close()
        if self.proc.stderr:
            self.proc.stderr.close()
        for fd in (self.master, self.slave):
            try:
                if fd == self.slave:
                    termios.tcflow(fd, termios.TCOON)
                os.close(fd)
            except (OSError, termios.error):
                pass   # already closed by the test (a hangup)


@pytest.fixture
def term():
    started = []

    def start(*args, argv=None, **kw):
        p = Pty(argv or [sys.executable, CHAT, "0", *LOCAL, "--name=", *args], **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()


def test_sighup_restores_the_terminal_says_goodbye_and_exits_129(term, chat):
    t = term()
    t.wait_for(rb"> ")
    assert t.modes_now() != t.modes_before
    peer = chat("0", *LOCAL)
    peer.type(f"connect 127.0.0.1 {t.port}")
    peer.wait_for(r"connected to peer 1 ")
    t.wait_for(rb"peer 1 .*connected to you")
    t.proc.send_signal(signal.SIGHUP)
    assert t.wait_exit() == 129
    assert t.modes_now() == t.modes_before
    peer.wait_for(r"peer 1 \([^)]*\) left\n")
    assert "closed the connection" not in peer.text()
    assert b"Traceback" not in t.screen


def test_a_real_hangup_eio_everywhere_still_says_goodbye_and_exits_129(term, chat):
    # The terminal window closes: reads and writes on it fail (EIO) and SIGHUP arrives.
    t = term(stderr=subprocess.PIPE)
    peer = chat("0", *LOCAL)
    peer.type(f"connect 127.0.0.1 {t.port}")
    t.wait_for(rb"peer 1 .*connected to you")
    t.proc.send_signal(signal.SIGHUP)       # the kernel's order: the signal, then EIO
    os.close(t.master)
    assert t.wait_exit(read=False) == 129
    peer.wait_for(r"peer 1 \([^)]*\) left\n")
    assert t.proc.stderr.read() == b""


@pytest.mark.parametrize("signum,status", [(signal.SIGQUIT, 131), (signal.SIGUSR1, 138),
                                           (signal.SIGUSR2, 140)])
def test_other_stopping_signals_restore_the_terminal(term, signum, status):
    t = term()
    t.wait_for(rb"> ")
    t.proc.send_signal(signum)
    assert t.wait_exit() == status
    assert t.modes_now() == t.modes_before
    assert b"Traceback" not in t.screen and b"exiting" in t.screen


def test_sigpipe_stays_ignored(term):
    t = term()
    t.wait_for(rb"> ")
    t.proc.send_signal(signal.SIGPIPE)
    t.type(b"myport\r")
    t.wait_for(rb"listening port: %d\r\n" % t.port)
    assert t.proc.poll() is None
    t.type(b"exit\r")
    assert t.wait_exit() == 0


def _stopped_with_original_modes_then_continued(t):
    wait_until(lambda: t.state() == "T", message="chat.py to stop")
    assert t.modes_now() == t.modes_before        # the shell gets its terminal back as lent
    mark = len(t.screen)
    t.proc.send_signal(signal.SIGCONT)
    t.wait_for(rb"\r\x1b\[K> send 1 half\r", start=mark)   # prompt and half line drawn again
    wait_until(lambda: t.modes_now() != t.modes_before, message="raw mode again")
    assert t.state() != "T"


@pytest.mark.parametrize("how", ["key", "SIGTSTP"])
def test_ctrl_z_stops_with_the_terminal_restored_and_sigcont_takes_it_back(term, chat, how):
    t = term()
    peer = chat("0", *LOCAL)
    peer.type(f"connect 127.0.0.1 {t.port}")
    t.wait_for(rb"peer 1 .*connected to you")
    t.type(b"send 1 half")
    t.wait_for(rb"> send 1 half")
    if how == "key":
        t.type(b"\x1a")
    else:
        t.proc.send_signal(signal.SIGTSTP)
    _stopped_with_original_modes_then_continued(t)
    t.type(b" and whole\r")
    peer.wait_for(r"message from peer 1 \([^)]*\): half and whole\n")
    t.type(b"exit\r")
    assert t.wait_exit() == 0
    assert t.modes_now() == t.modes_before


def test_an_internal_error_restores_the_terminal_and_says_one_line(term, tmp_path):
    trigger = tmp_path / "fail-now"
    wrapper = tmp_path / "failing_chat.py"
    wrapper.write_text(
        "import os, runpy, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "import reactor.loop\n"
        "original = reactor.loop.Reactor.run_once\n"
        "def run_once(self):\n"
        f"    if os.path.exists({str(trigger)!r}):\n"
        "        raise RuntimeError('injected failure')\n"
        "    original(self)\n"
        "reactor.loop.Reactor.run_once = run_once\n"
        f"sys.argv = [{CHAT!r}, '0', '--host', '127.0.0.1']\n"
        f"runpy.run_path({CHAT!r}, run_name='__main__')\n")
    t = term(argv=[sys.executable, str(wrapper)])
    t.wait_for(rb"> ")
    trigger.write_text("")
    t.type(b"x")                                   # wake the loop
    assert t.wait_exit() == 1
    assert t.modes_now() == t.modes_before
    t.read(0.1)
    assert b"Traceback" not in t.screen
    # (The "x" may be echoed after the line, once the modes are back.)
    assert re.search(rb"(\n|\x1b\[\?2004l)chat\.py: error: internal error: RuntimeError: injected failure\r\n",
                     t.screen.replace(b"\r\x1b[K", b"\n")), t.screen[-300:]
    assert t.screen.count(b"internal error") == 1


@pytest.mark.slow
def test_a_terminal_that_is_not_read_cannot_keep_it_alive(term):
    # Nobody reads the terminal (a frozen emulator, a stuck ssh): SIGTERM still ends it.
    t = term()
    t.wait_for(rb"> ")
    with socket.create_connection(("127.0.0.1", t.port)) as s:
        s.setblocking(False)
        line = b"m" * 99 + b"\n"
        deadline = time.monotonic() + 10
        while True:                 # flood until TCP stops taking more for 0.5 s
            assert time.monotonic() < deadline, "the flood was never pushed back"
            try:
                s.send(line * 100)
                continue
            except BlockingIOError:
                pass
            _, w, _ = select.select([], [s], [], 0.5)
            if not w:
                break
        started = time.monotonic()
        t.proc.send_signal(signal.SIGTERM)
        assert t.wait_exit(read=False) == 143
        took = time.monotonic() - started
    print(f"FIGURE SIGTERM to exit with an unread terminal (s): {took:.2f}")
    assert took < 3
    assert t.modes_now() == t.modes_before


def test_a_stopped_terminal_output_xoff_cannot_keep_it_alive(term):
    # Ctrl-S at a terminal that is not in our raw mode (stdin is a pipe here): the tty
    # stops output, our writes would block. SIGTERM still ends it, after the grace period
    # (--flush-timeout, shortened here from its 2 s so the test need not wait that long).
    t = term("--flush-timeout", "0.5", stdin_pipe=True)
    termios.tcflow(t.slave, termios.TCOOFF)
    with socket.create_connection(("127.0.0.1", t.port)) as s:
        s.setblocking(False)
        deadline = time.monotonic() + 10
        while True:
            assert time.monotonic() < deadline, "the flood was never pushed back"
            try:
                s.send(b"x" * 99 + b"\n")
                continue
            except BlockingIOError:
                pass
            _, w, _ = select.select([], [s], [], 0.25)
            if not w:
                break
        started = time.monotonic()
        t.proc.send_signal(signal.SIGTERM)
        # The output stays stopped: the exit does not wait for it (the deadline); it gives
        # up after the grace (whose length test_session.py proves on a fake clock).
        assert t.wait_exit() == 143
        took = time.monotonic() - started
    print(f"FIGURE SIGTERM to exit with terminal output stopped (s): {took:.2f}")

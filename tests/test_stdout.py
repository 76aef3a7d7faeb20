"""When nobody reads our stdout: chat.py stays responsive, bounded, and can always be stopped."""

import fcntl
import os
import re
import select
import signal
import socket
import subprocess
import termios
import threading
import time

import pytest

from helpers import figure, free_port, popen_chat, recv_line, run_chat, wait_until

LOCAL = ("--host", "127.0.0.1", "--name=")   # no login name in what is compared
F_GETPIPE_SZ = 1032
LINE = b"f" * 99 + b"\n"


def pipe_is_full(fd):
    """The pipe holds about all it can (it is pages, and some may be partly used).

    chat.py asks for a bigger pipe (256 KiB on Linux), so the size is read each time.
    """
    unread = int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), "little")
    return unread > fcntl.fcntl(fd, F_GETPIPE_SZ) * 0.9


class Unread:
    """chat.py whose stdout pipe the test reads once (the listening line), then never."""

    def __init__(self, *args, stdin=subprocess.PIPE):
        self.port = free_port()
        self.proc = popen_chat([str(self.port), *LOCAL, *args], stdin=stdin)
        self.pid = self.proc.pid
        self.out = self.proc.stdout.fileno()
        self.seen = bytearray()
        self.read_until(rb"listening on")

    def read_until(self, pattern, timeout=10.0):
        """Read stdout until ``pattern`` is in what was read (used to start and to drain)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while not regex.search(self.seen):
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {pattern!r}; got {bytes(self.seen[-300:])!r}"
            ready, _, _ = select.select([self.out], [], [], min(left, 0.1))
            if ready:
                data = os.read(self.out, 1 << 20)
                assert data, "chat.py closed its stdout"
                self.seen += data

    def pipe_is_full(self):
        return pipe_is_full(self.out)

    def type(self, text):
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def close(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def unread():
    started = []

    def start(*args, **kw):
        p = Unread(*args, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()


def flood_until_pushed_back(port_or_sock, blocked, limit_bytes=64 << 20):
    """Send lines until ``blocked()`` holds and then TCP stops taking more.

    Returns the connected socket and the bytes sent. "Stops taking" is judged
    over a 0.25 s window of no progress: a measurement, not a synchronisation.
    """
    if isinstance(port_or_sock, socket.socket):
        s = port_or_sock
    else:
        s = socket.socket()
        s.connect(("127.0.0.1", port_or_sock))
    s.setblocking(False)
    chunk = LINE * 100
    sent = 0
    deadline = time.monotonic() + 20
    while sent < limit_bytes:
        assert time.monotonic() < deadline, f"flood never pushed back ({sent} bytes sent)"
        try:
            sent += s.send(chunk)
            continue
        except BlockingIOError:
            pass
        if not blocked():
            select.select([], [s], [], 0.05)
            continue
        _, writable, _ = select.select([], [s], [], 0.25)
        if not writable:
            return s, sent
    raise AssertionError(f"chat.py took {sent} bytes without pushing back")


def test_sigterm_ends_it_in_time_while_its_stdout_is_never_read(unread):
    a = unread("--flush-timeout", "0.5")      # the grace period, shortened from 2 s
    s, sent = flood_until_pushed_back(a.port, a.pipe_is_full)
    figure("flood taken before TCP pushed back, stdout unread (KiB)", sent // 1024)
    assert sent < 16 << 20                       # it stopped reading: memory stays bounded
    # Commands are still served (the reply to the peer shows it; stdout shows nothing).
    a.type("send 1 still answering")
    s.setblocking(True)
    buf = bytearray()
    assert recv_line(s, buf=buf) == b"still answering"
    started = time.monotonic()
    a.proc.send_signal(signal.SIGTERM)
    # Nobody will ever read: the exit does not wait for that (the deadline), it gives up
    # after the grace and says what was lost. (How long the grace is, exactly:
    # test_session.py on a fake clock; that it is a real wait for stdout: the next test.)
    status = a.proc.wait(timeout=10)
    figure("SIGTERM to exit with stdout never read (s)", round(time.monotonic() - started, 2))
    assert status == 143
    err = a.proc.stderr.read().decode()
    assert re.fullmatch(r"error: \d+ bytes of output could not be written: "
                        r"stdout is not being read\n", err), err
    s.close()


def test_sigterm_waits_for_a_late_reader_of_stdout_and_exits_once_it_has_read(unread):
    a = unread("--flush-timeout", "60")       # a grace longer than any deadline here
    s, _ = flood_until_pushed_back(a.port, a.pipe_is_full)
    a.proc.send_signal(signal.SIGTERM)
    # The exit has begun when the peer is hung up on; chat.py is then still there,
    # waiting for its stdout to be read.
    s.setblocking(True)
    s.settimeout(10)
    try:
        while s.recv(1 << 16):
            pass
    except ConnectionResetError:            # it closed with our flood unread: a reset
        pass
    assert a.proc.poll() is None
    a.read_until(rb"\nexiting: closing 1 connection\n")    # everything, then its last line
    assert a.proc.wait(timeout=10) == 143                  # once read, at once: not after 60 s
    assert a.proc.stderr.read() == b""                     # nothing was lost
    s.close()


@pytest.mark.slow
def test_the_grace_is_the_flush_timeout_given_not_the_default(unread):
    """--flush-timeout reaches the exit's grace: with 60 s, chat.py is still waiting for
    its unread stdout well past the default 2 s (a slower machine only waits longer)."""
    a = unread("--flush-timeout", "60")
    s, _ = flood_until_pushed_back(a.port, a.pipe_is_full)
    a.proc.send_signal(signal.SIGTERM)
    s.setblocking(True)
    s.settimeout(10)
    try:
        while s.recv(1 << 16):        # the exit has begun: the peer is hung up on
            pass
    except ConnectionResetError:
        pass
    begun = time.monotonic()
    while time.monotonic() - begun < 3.0:     # past the default grace of 2 s
        assert a.proc.poll() is None, "it stopped waiting: the default grace was used"
        time.sleep(0.05)
    a.read_until(rb"\nexiting: closing 1 connection\n")
    assert a.proc.wait(timeout=10) == 143
    s.close()


def test_sigint_twice_stops_at_once_and_a_blocked_stderr_never_hangs_the_exit(unread):
    # stderr is the same unread pipe as stdout (2>&1): the last words cannot be written
    # either, and are dropped rather than waited for.
    port = free_port()
    proc = popen_chat([str(port), *LOCAL, "--flush-timeout", "60"], stderr=subprocess.STDOUT)
    try:
        out = proc.stdout.fileno()
        first = os.read(out, 100)
        assert first.startswith(b"listening on")
        s, _ = flood_until_pushed_back(port, lambda: pipe_is_full(out))
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        # Signals do not queue: send the second once the first was handled (the
        # listening socket closes as the exit begins).
        wait_until(lambda: _refused(port), message="the exit to begin")
        assert proc.poll() is None            # the first one waits (a grace of 60 s) ...
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130   # ... the second does not: well within it
        figure("two SIGINTs to exit, stdout and stderr never read (s)",
               round(time.monotonic() - started, 2))
        s.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        proc.stdout.close()


def _refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True


@pytest.mark.timeout(60)
@pytest.mark.slow
def test_heartbeats_keep_going_out_while_stdout_is_blocked_then_everything_arrives(unread, chat):
    a = unread("--heartbeat", "1")
    p = chat("0", *LOCAL, "--heartbeat", "1")
    p.type(f"connect 127.0.0.1 {a.port}")
    p.wait_for(r"connected to peer 1 ")
    s, _ = flood_until_pushed_back(a.port, a.pipe_is_full)
    blocked_at = time.monotonic()
    # Ten seconds (ten heartbeat periods, three make a peer dead) with a's stdout blocked.
    while time.monotonic() - blocked_at < 10:
        p.drain()
        assert not re.search(r"dropped|left|closed", p.text()), p.text()
        select.select([], [], [], 0.2)            # a measurement window, not a sync
    assert a.pipe_is_full()                       # still blocked the whole time
    p.type("list")
    p.wait_for(rf"1 +\S+ +127\.0\.0\.1:{a.port} +you connected")
    p.type("send 1 after ten seconds")
    p.wait_for(r"sent to peer 1")
    figure("heartbeat 1 s peer kept the connection with stdout blocked (s)",
           round(time.monotonic() - blocked_at, 1))
    # Now read a's stdout: it resumes reading peers, and nothing was dropped on the way.
    a.read_until(rb"after ten seconds", timeout=20)
    assert b"dropped" not in a.seen and b"stopped answering" not in a.seen
    a.type("exit")
    a.read_until(rb"exiting")
    assert a.proc.wait(timeout=10) == 0
    p.wait_for(r"peer 1 \([^)]*\) left\n")
    s.close()


def test_commands_wait_above_the_output_cap_and_nothing_is_lost(unread):
    # A script of many commands while stdout is blocked: every command runs in the end,
    # in order, and chat.py's output buffer stays bounded meanwhile.
    a = unread()
    with socket.create_connection(("127.0.0.1", a.port)) as s:
        s.sendall(b"hello\n")
        a.read_until(rb"peer 1 .*connected to you")
        count = 30_000                              # ~140 bytes of output each: > pipe + cap
        tail = b" " + b"x" * 90
        script = b"".join(b"send 1 m%d%s\n" % (i, tail) for i in range(count))
        # From a thread: once commands wait, chat.py stops reading stdin, as it should.
        writer = threading.Thread(target=a.proc.stdin.write, args=(script,), daemon=True)
        writer.start()
        # Everything the peer gets is a command that ran; wait till they stop coming.
        got = bytearray()
        s.settimeout(0.5)      # a measurement window: no command for 0.5 s means held
        try:
            while True:
                data = s.recv(1 << 20)
                assert data
                got += data
        except socket.timeout:
            pass
        ran = got.count(b"\n")
        rss_kib = int(re.search(rb"VmRSS:\s+(\d+)", open(f"/proc/{a.pid}/status", "rb").read())
                      .group(1))
        figure("commands run before the output cap held the queue", ran)
        figure("chat.py RSS with the queue held (KiB)", rss_kib)
        assert 1000 < ran < count                   # it ran some, then held the rest
        a.read_until(rb"sent to peer 1 \([^)]*\): m%d x" % (count - 1), timeout=30)
        s.settimeout(10)
        while got.count(b"\n") < count:
            got += s.recv(1 << 20)
        assert got.split(b"\n")[:-1] == [b"m%d%s" % (i, tail) for i in range(count)]
        writer.join(timeout=10)
        a.proc.stdin.close()
        a.read_until(rb"exiting")
        assert a.proc.wait(timeout=10) == 0


def test_stdout_to_a_file_or_dev_null(tmp_path):
    script = b"myport\nexit\n"
    path = tmp_path / "out.txt"
    with open(path, "wb") as f:
        proc = run_chat("0", *LOCAL, input=script, stdout=f)
    assert proc.returncode == 0 and proc.stderr == b""
    assert re.search(rb"listening on .*\n.*\d+\n.*exiting\n", path.read_bytes())
    proc = run_chat("0", *LOCAL, input=script, stdout=subprocess.DEVNULL)
    assert proc.returncode == 0 and proc.stderr == b""


def test_stdout_flags_are_given_back_at_exit():
    # O_NONBLOCK is shared with whoever else holds the pipe: chat.py must not leave it set.
    r, w = os.pipe()
    try:
        assert os.get_blocking(w)
        proc = run_chat("0", *LOCAL, input=b"exit\n", stdout=w)
        assert proc.returncode == 0
        assert os.get_blocking(w)
    finally:
        os.close(r)
        os.close(w)


def test_a_stdout_that_fails_ends_it_with_one_line():
    with open("/dev/full", "wb") as full:
        proc = run_chat("0", *LOCAL, "--stay", input=b"myport\n", stdout=full)
    assert proc.returncode == 1
    assert proc.stderr == b"error: could not write to stdout: No space left on device\n"

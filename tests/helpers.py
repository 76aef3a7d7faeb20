"""Driving real chat.py processes from tests: start, type, wait for output.

Nothing here sleeps to synchronise: every wait polls the process's output
(with ``select``) until a pattern appears or a deadline passes.
"""

from __future__ import annotations

import codecs
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import forkserver
from forkserver import ForkedChild, ForkServer

ROOT = Path(__file__).resolve().parent.parent
CHAT = str(ROOT / "chat.py")
LISTENING = re.compile(r"listening on \S+:(\d+)")


class ChatProcess:
    """One ``chat.py`` subprocess with its stdin, stdout and stderr as pipes.

    It is forked from the fork server (see ``forkserver``: a real process, without the
    interpreter's start-up) unless what the test asks for needs a fresh interpreter.

    Without a ``--name`` among ``args`` it runs with ``--name=`` (no name), so
    what a test expects does not depend on the login name it runs under.
    """

    def __init__(self, *args: str, prefix: list[str] | None = None, stdin=subprocess.PIPE,
                 env: dict | None = None, wait_listening: bool = True,
                 preexec_fn=None, lan: bool = False) -> None:
        full_env = dict(os.environ, PYTHONUNBUFFERED="1")
        if env:
            full_env.update(env)
        if not any(arg.startswith("--name") for arg in args):
            args = (*args, "--name=")
        self.proc = popen_chat(args, stdin=stdin, env=full_env, prefix=prefix,
                               preexec_fn=preexec_fn, lan=lan)
        self.pid = self.proc.pid
        self._buf = {"out": bytearray(), "err": bytearray()}
        self._text = {"out": [], "err": []}   # decoded output, in pieces
        self._decoders = {k: codecs.getincrementaldecoder("utf-8")("replace")
                          for k in ("out", "err")}
        self._pos = {"out": 0, "err": 0}
        for pipe in (self.proc.stdout, self.proc.stderr):
            os.set_blocking(pipe.fileno(), False)
        self.port = 0
        if wait_listening:
            self.port = int(self.wait_for(LISTENING).group(1))

    # -- input ---------------------------------------------------------------------

    def type(self, *lines: str) -> None:
        data = "".join(line + "\n" for line in lines).encode()
        self.write(data)

    def write(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass

    # -- output ---------------------------------------------------------------------

    def _pump(self, timeout: float) -> None:
        pipes = {self.proc.stdout.fileno(): "out", self.proc.stderr.fileno(): "err"}
        ready, _, _ = select.select(list(pipes), [], [], timeout)
        for fd in ready:
            for _ in range(16):   # whatever is waiting, up to 1 MiB
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if not data:
                    break
                name = pipes[fd]
                self._buf[name] += data
                self._text[name].append(self._decoders[name].decode(data))

    def _decoded(self, stream: str) -> str:
        pieces = self._text[stream]
        if len(pieces) > 1:
            pieces[:] = ["".join(pieces)]
        return pieces[0] if pieces else ""

    def text(self, stream: str = "out") -> str:
        self._pump(0)
        return self._decoded(stream)

    def raw(self, stream: str = "out") -> bytes:
        self._pump(0)
        return bytes(self._buf[stream])

    def wait_for(self, pattern, stream: str = "out", timeout: float = 10.0,
                 from_start: bool = False) -> re.Match:
        """Wait until ``pattern`` appears in output not yet matched by an earlier wait."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            text = self._decoded(stream)
            start = 0 if from_start else self._pos[stream]
            match = regex.search(text, start)
            if match:
                self._pos[stream] = match.end()
                return match
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"timed out waiting for {regex.pattern!r} on std{stream} of chat.py "
                    f"(pid {self.pid}, exit {self.proc.poll()}).\n--- stdout:\n"
                    f"{self.text('out')}\n--- stderr:\n{self.text('err')}")
            if self.proc.poll() is not None:
                self._pump(0.05)
                if self._decoded(stream) == text:
                    raise AssertionError(
                        f"chat.py (pid {self.pid}) exited with {self.proc.returncode} before "
                        f"{regex.pattern!r} appeared on std{stream}.\n--- stdout:\n"
                        f"{self.text('out')}\n--- stderr:\n{self.text('err')}")
            else:
                self._pump(min(left, 0.05))

    def wait_exit(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"chat.py (pid {self.pid}) did not exit in {timeout} s."
                                     f"\n--- stdout:\n{self.text('out')}\n--- stderr:\n"
                                     f"{self.text('err')}")
            self._pump(0.05)
        self.drain()
        return self.proc.returncode

    def drain(self) -> None:
        """Read whatever output is waiting, so the child never blocks on a full pipe."""
        for _ in range(100):
            before = len(self._buf["out"]) + len(self._buf["err"])
            self._pump(0.01)
            if len(self._buf["out"]) + len(self._buf["err"]) == before:
                return

    def signal(self, signum: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signum)

    def stop(self) -> None:
        """Make sure the process is gone (used by fixtures)."""
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGCONT)
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass


def quiet_on_the_lan(args, lan: bool) -> tuple:
    """Tests talk to loopback only: no chat.py of theirs announces itself on this
    machine's network (a peer listening on loopback does not anyway) unless ``lan``
    (in network namespaces the test made)."""
    if lan or "--no-announce" in args:
        return tuple(args)
    return (*args, "--no-announce")


def popen_chat(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
               env: dict | None = None, new_session: bool = False, prefix=None,
               preexec_fn=None, lan: bool = False):
    """``subprocess.Popen([*prefix, "python3", "chat.py", *args], ...)`` (``env``: the whole
    environment), forked from the fork server when a fork can give what is asked."""
    env = dict(os.environ) if env is None else env
    args = quiet_on_the_lan(args, lan)
    server = ForkServer.get(str(ROOT))
    if not prefix and preexec_fn is None and server.can_fork(env):
        return ForkedChild(server, [CHAT, *args], env, str(ROOT), stdin=stdin, stdout=stdout,
                           stderr=stderr, new_session=new_session)
    return subprocess.Popen([*(prefix or []), sys.executable, CHAT, *args], stdin=stdin,
                            stdout=stdout, stderr=stderr, env=env, cwd=str(ROOT),
                            start_new_session=new_session, preexec_fn=preexec_fn)


def run_chat(*args: str, input: bytes | None = None, stdin=subprocess.DEVNULL,
             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env: dict | None = None,
             timeout: float = 30) -> subprocess.CompletedProcess:
    """``subprocess.run(["python3", "chat.py", *args], ...)``, forked when it can be
    (``env``: variables to add)."""
    full_env = dict(os.environ, **(env or {}))
    args = quiet_on_the_lan(args, False)
    server = ForkServer.get(str(ROOT))
    if server.can_fork(full_env):
        return forkserver.run(server, [CHAT, *args], full_env, str(ROOT), input=input,
                              stdin=stdin, stdout=stdout, stderr=stderr, timeout=timeout)
    return subprocess.run([sys.executable, CHAT, *args], input=input,
                          stdin=None if input is not None else stdin, stdout=stdout,
                          stderr=stderr, env=full_env, timeout=timeout, cwd=str(ROOT))


class MemorySink:
    """A console sink that records ``(fd, bytes)``; ``unwritten`` is what close() reports."""

    def __init__(self, fd: int, written: list) -> None:
        self.fd, self.written = fd, written
        self.closed = False
        self.lost = None
        self.unwritten = 0

    def write(self, data: bytes) -> None:
        self.written.append((self.fd, bytes(data)))

    def when_drained(self, callback) -> None:
        callback()

    def get_buffer_size(self) -> int:
        return 0

    def close(self) -> int:
        self.closed = True
        return self.unwritten


def wait_until(condition, timeout: float = 10.0, interval: float = 0.01,
               message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(interval)  # polling interval, not synchronisation


def recv_line(sock: socket.socket, timeout: float = 10.0, buf: bytearray | None = None) -> bytes:
    """Read from ``sock`` until one full line is there; return it without ``\\n``."""
    buf = buf if buf is not None else bytearray()
    deadline = time.monotonic() + timeout
    searched = 0
    while True:
        end = buf.find(b"\n", searched)
        if end >= 0:
            line = bytes(buf[:end])
            del buf[:end + 1]
            return line
        searched = len(buf)
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for a line; got {bytes(buf[-200:])!r}")
        sock.settimeout(left)
        data = sock.recv(65536)
        if not data:
            raise AssertionError(f"connection closed; got {bytes(buf[-200:])!r}")
        buf += data


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Two ends of one TCP connection on loopback: (client, server)."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        client = socket.create_connection(srv.getsockname())
        server, _ = srv.accept()
    return client, server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BlackHole:
    """A loopback listener whose accept queue is full: new connects get no answer.

    ``listen(0)`` and never ``accept()``: the kernel completes one or two
    handshakes into the queue, then drops further SYNs, exactly like an
    unreachable host, without sending anything off this machine.
    """

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.fillers: list[socket.socket] = []
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(s)
            _, writable, _ = select.select([], [s], [], 0.2)
            if not writable:
                break  # this one is pending: the queue is full
        else:
            raise AssertionError("could not fill the accept queue")

    def close(self) -> None:
        for s in self.fillers:
            s.close()
        self.listener.close()


def proc_status_kib(pid: int, field: str) -> int:
    """A memory figure from /proc/<pid>/status (VmRSS, VmHWM ...), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sleep_record(pid: int) -> tuple[str, int]:
    """(state letter, how many times it has been switched out so far) from /proc."""
    state, switches = "?", 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == "State":
                state = value.split()[0]
            elif key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                switches += int(value)
    return state, switches


def sleeps_through(pid: int, window: float = 0.3) -> bool:
    """Is the process asleep now, and still in that same sleep ``window`` seconds later?

    A process that ran at all in between was switched out again to sleep (or was
    preempted), which counts a context switch; one that never stopped running (a loop
    that spins on a ready fd or a zero timeout) is never seen asleep. So the answer does
    not depend on how fast or how loaded the machine is.
    """
    before = _sleep_record(pid)
    time.sleep(window)     # the span looked at, not a synchronisation
    after = _sleep_record(pid)
    return before[0] == after[0] == "S" and before[1] == after[1]


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def figure(name: str, value) -> None:
    """Print a measured figure (shown with ``pytest -s``, quoted in notes)."""
    print(f"FIGURE {name}: {value}")


class DelayProxy:
    """A loopback TCP proxy that delays every byte by ``delay`` seconds each way: a slow link.

    It listens on 127.0.0.1 and forwards each accepted connection to
    ``target``; data and end-of-stream keep their order. Threads are fine
    here: this is the test's network, not the program under test.
    """

    def __init__(self, target_port: int, delay: float) -> None:
        import threading
        self._threading = threading
        self.target = ("127.0.0.1", target_port)
        self.delay = delay
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self._socks: list[socket.socket] = []
        self._closed = False
        self.seen = bytearray()        # every byte relayed, both ways: what a wiretap sees
        self.flip_at: int | None = None   # flip one bit of the byte at this offset (to client)
        self._to_client = 0
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._socks += [client, upstream]
            self._pipe(client, upstream, to_client=False)
            self._pipe(upstream, client, to_client=True)

    def _tamper(self, data: bytes) -> bytes:
        start, self._to_client = self._to_client, self._to_client + len(data)
        if self.flip_at is not None and start <= self.flip_at < self._to_client:
            i = self.flip_at - start
            data = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
            self.flip_at = None
        return data

    def _pipe(self, src: socket.socket, dst: socket.socket, to_client: bool) -> None:
        import queue
        line: queue.Queue = queue.Queue()

        def read() -> None:
            while True:
                try:
                    data = src.recv(65536)
                except OSError:
                    data = b""
                self.seen += data
                if to_client and data:
                    data = self._tamper(data)
                line.put((time.monotonic() + self.delay, data))
                if not data:
                    return

        def write() -> None:
            while True:
                due, data = line.get()
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)   # the link's delay, not synchronisation
                try:
                    if not data:
                        dst.shutdown(socket.SHUT_WR)
                        return
                    dst.sendall(data)
                except OSError:
                    return

        for fn in (read, write):
            self._threading.Thread(target=fn, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass


class PtyScreen:
    """What a test reads from a pty and types into it (``master``, ``slave`` and ``proc`` set by
    the subclass).

    ``screen`` is every byte the program wrote to the terminal so far.
    """

    master: int
    slave: int
    screen: bytes = b""

    def read(self, timeout: float = 0.05) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            try:
                self.screen += os.read(self.master, 65536)
            except OSError:
                pass

    def drain(self) -> None:
        """Read everything the terminal holds now. (Polling a pty's master first moves
        what the program wrote through the line discipline, so after an exit this is
        all of it.)"""
        while True:
            before = len(self.screen)
            self.read(0)
            if len(self.screen) == before:
                return

    def wait_exit(self, timeout: float = 10, read: bool = True) -> int:
        """Wait for ``self.proc`` to end, reading the terminal meanwhile (unless ``read``
        is false: a test that stopped the terminal) and all of it at the end."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, "chat.py did not exit"
            if read:
                self.read()
            else:
                select.select([], [], [], 0.02)
        if read:
            self.drain()
        return self.proc.returncode

    def wait_for(self, pattern, timeout: float = 10, start: int = 0) -> re.Match:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = regex.search(self.screen, start)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {pattern!r}; terminal got "
                                     f"{self.screen[-2000:]!r}")
            self.read()

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def modes_now(self):
        import termios
        return termios.tcgetattr(self.slave)

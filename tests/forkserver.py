"""Start ``chat.py`` processes in milliseconds: fork them from a process that has it loaded.

A fresh ``python3 chat.py`` spends ~90 ms starting the interpreter and importing
before it listens; the suite starts ~150 of them. The fork server is one
Python process, started once per test run, that has imported everything
chat.py imports. Asked for a peer, it forks: the child takes the test's pipes
as its stdin, stdout and stderr, the test's environment, arguments and
working directory, puts the signals back as the server's interpreter had them,
runs ``chat.main()`` and ends as the interpreter ends a script. It is a real,
separate process: real pipes, real signals, its own pid, fds and exit status.

What a fork cannot give (a variable the interpreter reads as it starts, such as
``PYTHONIOENCODING`` or ``LC_ALL``; a ``preexec_fn``; a command in front of
Python) is left to ``subprocess``: :meth:`ForkServer.can_fork` says which.
Known differences that no test depends on: the children share the server's
hash seed, and ``ps`` shows them as ``forkserver.py``.

The protocol, over a Unix socket pair: the test sends one JSON line
``{"id": I, "argv": [...], "env": {...}, "cwd": ..., "new_session": ...}`` with
three fds (stdin, stdout, stderr) attached; the server answers ``pid I N``, and
later ``exit N STATUS`` when that child ends (STATUS as ``Popen.returncode``
gives it: negative for a signal). When the test run ends, its end of the
socket closes and the server kills whatever children are left, then exits.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

STARTUP_ENV_PREFIXES = ("PYTHON", "LC_", "LANG")   # read as the interpreter starts


def startup_variables(environ) -> dict:
    return {key: value for key, value in environ.items()
            if key.startswith(STARTUP_ENV_PREFIXES) and key != "PYTHONUNBUFFERED"}


# -- the server (runs in its own process) ---------------------------------------------------

# What chat.py imports lazily as it starts (should it import more, a child imports that
# itself: only speed suffers).
PRELOAD = ("chat", "commands", "commands.completion", "commands.session",
           "commands.terminal.jobs", "commands.terminal.lineedit", "commands.terminal.screen",
           "network", "network.identity", "network.names", "network.trust", "reactor",
           "reactor.netutil", "reactor.process", "getpass", "resource", "ssl")


def serve(sock_fd: int, root: str) -> None:
    """Fork a child per request until the test run's end of the socket closes; then kill
    whatever children are left."""
    import importlib
    sys.path[0] = root                 # the children see what ``python3 chat.py`` sees
    for name in PRELOAD:
        importlib.import_module(name)
    sock = socket.socket(fileno=sock_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: set[int] = set()
    try:
        while True:
            try:
                ready, _, _ = select.select([sock, wake_r], [], [])
            except InterruptedError:
                continue
            if wake_r in ready:
                os.read(wake_r, 4096)
                _reap(sock, children)
            if sock in ready:
                received = _read_requests(sock)
                if received is None:
                    return
                requests, fds = received
                for request in requests:
                    if "kill" in request:    # an orphan (see ForkServer._orphan)
                        if request["kill"] in children:
                            os.kill(request["kill"], signal.SIGKILL)
                        continue
                    pid = os.fork()
                    if pid == 0:
                        children.clear()     # not this child's to kill, whatever happens
                        os.close(wake_r)
                        os.close(wake_w)
                        sock.close()
                        _child(request, fds)   # never returns
                    for fd in fds:
                        os.close(fd)
                    children.add(pid)
                    sock.sendall(f"pid {request['id']} {pid}\n".encode())
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass


def _read_requests(sock: socket.socket) -> tuple[list[dict], list[int]] | None:
    """The requests that came, and the fds of the one spawn among them (the client waits
    for each spawn's answer; a kill it does not wait for may come just before one).
    ``None`` when the test run has gone (its end closed, or reset with an answer unread)."""
    try:
        data, fds, _, _ = socket.recv_fds(sock, 1 << 20, 3)
        while data and not data.endswith(b"\n"):    # a long environment may come in pieces
            more = sock.recv(1 << 20)
            if not more:
                return None
            data += more
    except ConnectionError:
        return None
    if not data:
        return None
    return [json.loads(line) for line in data.splitlines()], fds


def _reap(sock: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        try:
            sock.sendall(f"exit {pid} {os.waitstatus_to_exitcode(status)}\n".encode())
        except OSError:
            pass


def _child(request: dict, fds: list[int]) -> None:
    """Become ``python3 chat.py ARGS``: the fds, the environment, the signals as the
    server's own interpreter had them when it started (only SIGCHLD was changed)."""
    status = 1
    try:
        if request["new_session"]:
            os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(request["env"])
        time.tzset()
        os.chdir(request["cwd"])
        _standard_streams()
        sys.argv = request["argv"]
        status = _run_main()
    finally:
        os._exit(status)


def _run_main() -> int:
    """``chat.main()``, ending as the interpreter ends a script: the exit status of
    ``sys.exit``, a traceback for an uncaught exception, death by SIGINT for an uncaught
    KeyboardInterrupt, the ``atexit`` handlers, and 120 if stdout cannot be flushed."""
    import traceback
    import chat
    try:
        status = chat.main(sys.argv[1:])
    except SystemExit as exc:        # argparse: --help, --version, usage errors
        code = exc.code
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
        status = 0 if code is None else code & 0xFF if isinstance(code, int) else 1
    except KeyboardInterrupt:
        traceback.print_exc()
        _finish()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        return 130
    except BaseException:  # noqa: BLE001 - as the interpreter does
        traceback.print_exc()
        status = 1
    return 120 if not _finish() else status


def _finish() -> bool:
    """The ``atexit`` handlers, then flush stdout and stderr; False if a flush failed."""
    import atexit
    atexit._run_exitfuncs()
    flushed = True
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            flushed = False
    return flushed


def _standard_streams() -> None:
    """New sys.stdin/stdout/stderr on the new fds 0/1/2, as the interpreter makes them."""
    import io
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        old = getattr(sys, name)     # the server's: same start-up variables, same encoding
        raw = io.FileIO(fd, mode, closefd=False)
        if mode == "r":
            binary = io.BufferedReader(raw)
        else:                        # -u: no buffer at all under the text layer
            binary = raw if unbuffered else io.BufferedWriter(raw)
        text = io.TextIOWrapper(binary, encoding=old.encoding, errors=old.errors,
                                line_buffering=not unbuffered and (fd == 2 or raw.isatty()),
                                write_through=unbuffered)
        setattr(sys, name, text)


# -- the client (in the test process) ----------------------------------------------------------

class ForkServer:
    """The test run's one fork server, started on first use."""

    _instance: "ForkServer | None" = None

    @classmethod
    def get(cls, root: str) -> "ForkServer":
        if cls._instance is None or cls._instance._proc.poll() is not None:
            cls._instance = cls(root)
        return cls._instance

    @classmethod
    def close_if_started(cls) -> None:
        """The end of the test run: the server kills what is left of its children."""
        if cls._instance is not None:
            cls._instance._sock.close()
            cls._instance._proc.wait(timeout=10)
            cls._instance = None

    def __init__(self, root: str) -> None:
        ours, theirs = socket.socketpair()
        self._proc = subprocess.Popen(
            [sys.executable, __file__, str(theirs.fileno()), root], pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, cwd=root)
        theirs.close()
        self.startup = startup_variables(os.environ)   # what the server's interpreter read
        self._sock = ours
        self._buf = b""
        self._ids = itertools.count()
        self._exits: dict[int, int] = {}
        self._lock = threading.Lock()

    def can_fork(self, env: dict) -> bool:
        """Does a child with ``env`` start as the server did? (Else it needs subprocess.)"""
        return startup_variables(env) == self.startup

    def spawn(self, argv: list[str], env: dict, cwd: str, fds: list[int],
              new_session: bool = False) -> int:
        request_id = next(self._ids)
        request = json.dumps({"id": request_id, "argv": argv, "env": env, "cwd": cwd,
                              "new_session": new_session}).encode() + b"\n"
        with self._lock:
            socket.send_fds(self._sock, [request], fds)
            while True:
                kind, first, second = self._read_line(timeout=10)
                if kind == "exit":
                    self._exits[int(first)] = int(second)
                elif int(first) == request_id:
                    self._exits.pop(int(second), None)    # an old pid, used again
                    return int(second)
                else:
                    self._orphan(int(second))

    def _orphan(self, pid: int) -> None:
        """The answer to a spawn that was interrupted: nobody has that child. The server
        kills it, if it is still its child (so never a pid used again)."""
        self._sock.sendall(json.dumps({"kill": pid}).encode() + b"\n")

    def returncode(self, pid: int, timeout: float = 0.0) -> int | None:
        """The child's exit status, waiting up to ``timeout``; ``None`` if it still runs.
        (Asked once it is known, it is forgotten: the pid may be used again.)"""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if pid in self._exits:
                    return self._exits.pop(pid)
                left = deadline - time.monotonic()
                try:         # a short wait each time, so the lock is never held for long
                    kind, first, second = self._read_line(timeout=min(max(left, 0), 0.05))
                except TimeoutError:
                    if left <= 0:
                        return None
                    continue
                if kind == "exit":
                    self._exits[int(first)] = int(second)
                else:
                    self._orphan(int(second))

    def _read_line(self, timeout: float) -> list[str]:
        """The next answer, split into its words."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._sock], [], [], max(left, 0))
            if not ready:
                raise TimeoutError
            data = self._sock.recv(4096)
            if not data:
                raise RuntimeError("the fork server ended")
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode().split()


class ForkedChild:
    """What the tests use of ``subprocess.Popen``, for a child of the fork server.

    ``stdin``, ``stdout`` and ``stderr`` are given as to Popen: ``PIPE``, ``DEVNULL``,
    an fd or a file (and ``STDOUT`` for stderr).
    """

    def __init__(self, server: ForkServer, argv: list[str], env: dict, cwd: str,
                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                 new_session: bool = False) -> None:
        self._server = server
        self.returncode = None
        theirs, ours = [], []
        try:
            for spec, reading in ((stdin, True), (stdout, False), (stderr, False)):
                if spec == subprocess.STDOUT:
                    fd, mine = os.dup(theirs[1]), None
                else:
                    fd, mine = _child_end(spec, reading)
                theirs.append(fd)
                ours.append(mine)
            self.pid = server.spawn(argv, env, cwd, theirs, new_session)
        except BaseException:
            for fd in ours:
                if fd is not None:
                    os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        self.stdin, self.stdout, self.stderr = (
            None if fd is None else open(fd, "wb" if i == 0 else "rb")
            for i, fd in enumerate(ours))

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._server.returncode(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self._server.returncode(self.pid, 1e9 if timeout is None
                                                      else timeout)
            if self.returncode is None:
                raise subprocess.TimeoutExpired("chat.py", timeout)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _child_end(spec, reading: bool) -> tuple[int, int | None]:
    """The child's fd for one stream, and ours (for ``PIPE``) or ``None``."""
    if spec == subprocess.PIPE:
        r, w = os.pipe()
        return (r, w) if reading else (w, r)
    if spec == subprocess.DEVNULL:
        return os.open(os.devnull, os.O_RDONLY if reading else os.O_WRONLY), None
    return os.dup(spec if isinstance(spec, int) else spec.fileno()), None


def run(server: ForkServer, argv: list[str], env: dict, cwd: str, input: bytes | None = None,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        timeout: float = 30) -> subprocess.CompletedProcess:
    """``subprocess.run`` for a forked child: feed ``input``, collect what it writes."""
    child = ForkedChild(server, argv, env, cwd,
                        stdin=subprocess.PIPE if input is not None else stdin,
                        stdout=stdout, stderr=stderr)
    if input is not None:
        def feed() -> None:
            try:
                child.stdin.write(input)
                child.stdin.close()
            except BrokenPipeError:
                pass
        threading.Thread(target=feed, daemon=True).start()
    outputs = {f: bytearray() for f in (child.stdout, child.stderr) if f is not None}
    deadline = time.monotonic() + timeout
    open_files = list(outputs)
    while open_files:
        left = deadline - time.monotonic()
        if left <= 0:
            child.kill()
            raise subprocess.TimeoutExpired(argv, timeout)
        ready, _, _ = select.select(open_files, [], [], left)
        for f in ready:
            data = os.read(f.fileno(), 65536)
            if data:
                outputs[f] += data
            else:
                open_files.remove(f)
    status = child.wait(max(deadline - time.monotonic(), 0))
    for f in outputs:
        f.close()
    return subprocess.CompletedProcess(argv, status,
                                       bytes(outputs[child.stdout]) if child.stdout else None,
                                       bytes(outputs[child.stderr]) if child.stderr else None)


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2])

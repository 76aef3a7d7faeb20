"""Host names resolved off the loop, by a short-lived helper process.

``getaddrinfo`` is the only way to ask the system resolver the way every other
program does (/etc/hosts, DNS, mDNS, whatever nsswitch.conf says), and it
blocks: a slow or dead DNS server would freeze the loop, and with it every
conversation, for as long as the resolver waits (seconds, per server, per
retry). So the call runs in a child process that writes its answer on a pipe,
and the pipe is one more file descriptor the loop watches.

Why a process and not a thread: this program has one thread, and the rules
that keep it simple (nothing shared, no locks) hold only while that stays
true. A process can also be stopped at any moment (SIGKILL), which a thread
stuck inside ``getaddrinfo`` cannot: cancel and timeout really end the work.

The helper is ``python -I -S -c HELPER_CODE host port``: isolated and without
``site``, it starts in a few tens of milliseconds. It runs in a session of its
own, so a Ctrl-C typed at the terminal (SIGINT to the foreground process
group) is ours to handle, not its. Its answer is a few lines of ASCII::

    ok inet 127.0.0.1 8000
    ok inet6 fe80::1%eth0 8000
    gaierror -2 Name or service not known
    oserror 22 invalid host name: label empty or too long

and ``parse_answer`` reads them strictly: anything else, or more than
``MAX_ANSWER_BYTES``, is a failure, never an exception in the loop.

Starting the helper (fork and exec, inside ``subprocess.Popen``) is the one
system call here that takes a moment; everything after it is non-blocking.
The child is reaped with ``waitpid(WNOHANG)`` (``Popen.poll``), retried from
timers until it is gone, after a SIGKILL if it had not exited by itself: no
zombie is left behind, and no call waits for one.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
from typing import Callable

from .loop import EVENT_READ, Reactor

# What a caller may pass as ``timeout_s``: glibc waits 5 s per DNS server before the
# next one, and an mDNS lookup of a name nobody answers for takes about as long.
RESOLVE_TIMEOUT_S = 10.0
MAX_ADDRESSES = 16                  # addresses handed to on_done, after duplicates are gone
MAX_ANSWER_BYTES = 64 * 1024        # more output than this from the helper is garbage
# Waits between two non-blocking reaping attempts (about 4 s in all). A child still there
# after the last one is left to ``subprocess``'s own clean-up (the next Popen reaps it).
REAP_DELAYS_S = (0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)

# Runs in the helper. Writes the whole answer at once, in the format parse_answer reads.
HELPER_CODE = r"""
import socket, sys
def main():
    host, port = sys.argv[1], int(sys.argv[2])
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        lines = ["gaierror %d %s" % (exc.errno or 0, exc.strerror or exc)]
    except OSError as exc:
        lines = ["oserror %d %s" % (exc.errno or 0, exc.strerror or exc)]
    except (UnicodeError, ValueError) as exc:
        lines = ["oserror 22 invalid host name: %s" % (exc,)]
    else:
        lines = []
        for family, _, _, _, sockaddr in infos[:256]:
            if family == socket.AF_INET:
                lines.append("ok inet %s %d" % (sockaddr[0], sockaddr[1]))
            elif family == socket.AF_INET6:
                ip, scope = sockaddr[0], sockaddr[3]
                if scope and "%" not in ip:
                    try:
                        ip += "%" + socket.if_indextoname(scope)
                    except (OSError, AttributeError):
                        ip += "%" + str(scope)
                lines.append("ok inet6 %s %d" % (ip, sockaddr[1]))
    text = "".join(" ".join(line.split()) + "\n" for line in lines)
    try:
        sys.stdout.buffer.write(text.encode("ascii", "backslashreplace"))
        sys.stdout.buffer.flush()
    except OSError:
        pass
main()
"""

_FAMILIES = {"inet": socket.AF_INET, "inet6": socket.AF_INET6}
_MAPPED_PREFIX = bytes(10) + b"\xff\xff"          # ::ffff:a.b.c.d
_SCOPE_FORBIDDEN = set(" %/\t")
_MAX_SCOPE_CHARS = 64


def parse_answer(data: bytes) -> list[tuple[int, str, int]]:
    """The helper's output as ``[(family, ip, port), ...]``, or raise an ``OSError``.

    At least one address, at most ``MAX_ADDRESSES``, in the order given, duplicates
    removed; an IPv4-mapped IPv6 address becomes the IPv4 address. A ``gaierror``
    line raises ``socket.gaierror``, an ``oserror`` line ``OSError``; anything
    malformed raises ``OSError(EPROTO, ...)``. Messages are always one line.
    """
    if not data:
        raise OSError(errno.EIO, "the resolver helper gave no answer")
    if len(data) > MAX_ANSWER_BYTES:
        raise _garbage(f"more than {MAX_ANSWER_BYTES // 1024} KiB")
    if not data.endswith(b"\n"):
        raise _garbage("the answer is cut short")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise _garbage("not ASCII") from None
    lines = text[:-1].split("\n")
    if lines[0].startswith(("gaierror ", "oserror ")):
        if len(lines) != 1:
            raise _garbage("an error line among others")
        raise _error_of(lines[0])
    found: list[tuple[int, str, int]] = []
    seen: set[tuple[int, str, int]] = set()
    for number, line in enumerate(lines, 1):
        address = _address_of(line)
        if address is None:
            raise _garbage(f"line {number} is malformed")
        if address not in seen and len(found) < MAX_ADDRESSES:
            seen.add(address)
            found.append(address)
    return found


def _error_of(line: str) -> OSError:
    kind, _, rest = line.partition(" ")
    number, _, message = rest.partition(" ")
    digits = number[1:] if number.startswith("-") else number
    if not (digits.isdigit() and len(digits) <= 6) or not message.isprintable():
        return _garbage("the error line is malformed")
    message = message.strip() or "the resolver failed"
    if kind == "gaierror":
        return socket.gaierror(int(number), message)
    return OSError(int(number), message)


def _address_of(line: str) -> tuple[int, str, int] | None:
    """``(family, ip, port)`` from ``ok <inet|inet6> <ip> <port>``, or None."""
    fields = line.split(" ")
    if len(fields) != 4 or fields[0] != "ok" or fields[1] not in _FAMILIES:
        return None
    family, ip, port_text = _FAMILIES[fields[1]], fields[2], fields[3]
    if not (port_text.isdigit() and len(port_text) <= 5 and int(port_text) <= 65535):
        return None
    port = int(port_text)
    address, percent, scope = ip.partition("%")
    if percent and (family != socket.AF_INET6 or not scope or len(scope) > _MAX_SCOPE_CHARS
                    or not scope.isprintable() or _SCOPE_FORBIDDEN & set(scope)):
        return None
    try:
        packed = socket.inet_pton(family, address)
    except (OSError, ValueError):
        return None
    if family == socket.AF_INET6 and packed.startswith(_MAPPED_PREFIX):
        return (socket.AF_INET, socket.inet_ntop(socket.AF_INET, packed[12:]), port)
    canonical = socket.inet_ntop(family, packed)
    return (family, canonical + percent + scope, port)


def _garbage(what: str) -> OSError:
    return OSError(errno.EPROTO, f"unreadable answer from the resolver helper: {what}")


class Lookup:
    """One name being resolved by a helper process.

    Calls exactly one of ``on_done(addresses)`` or ``on_failed(exc)``, always from
    the loop (never from inside ``__init__`` or ``cancel``), and neither after
    ``cancel()``. ``argv`` replaces the helper's command (tests: a helper that
    stalls, or writes garbage); the host and port are appended to it as well.
    """

    __slots__ = ("_reactor", "_timeout_s", "_on_done", "_on_failed", "_proc", "_fd",
                 "_buffer", "_timer", "closed")

    def __init__(self, reactor: Reactor, host: str, port: int, timeout_s: float,
                 on_done: Callable[[list[tuple[int, str, int]]], None],
                 on_failed: Callable[[OSError], None],
                 argv: list[str] | None = None) -> None:
        self._reactor = reactor
        self._timeout_s = timeout_s
        self._on_done = on_done
        self._on_failed = on_failed
        self._proc: subprocess.Popen | None = None
        self._fd = -1
        self._buffer = bytearray()
        self._timer = None
        self.closed = False
        command = list(argv) if argv is not None else [sys.executable, "-I", "-S", "-c",
                                                       HELPER_CODE]
        try:
            self._proc = subprocess.Popen(command + [host, str(port)], stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          close_fds=True, start_new_session=True, bufsize=0)
        except OSError as exc:           # EMFILE, ENOMEM, EAGAIN, E2BIG, no such program...
            reason = exc.strerror or str(exc) or type(exc).__name__
            reactor.call_soon(self._start_failed,
                              OSError(exc.errno, f"cannot start the resolver helper: {reason}"))
            return
        except (ValueError, subprocess.SubprocessError) as exc:   # a NUL in the name...
            reactor.call_soon(self._start_failed,
                              OSError(errno.EINVAL, f"cannot start the resolver helper: {exc}"))
            return
        self._fd = self._proc.stdout.fileno()
        os.set_blocking(self._fd, False)
        reactor.set_handler(self._fd, self, EVENT_READ)
        self._timer = reactor.call_later(timeout_s, self._timed_out)

    # -- the loop's side ----------------------------------------------------------------

    def on_readable(self) -> None:
        if self.closed:
            return
        try:
            chunk = os.read(self._fd, MAX_ANSWER_BYTES + 1 - len(self._buffer))
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(OSError(exc.errno, "cannot read the resolver helper's answer: "
                                          f"{exc.strerror or exc}"))
            return
        if chunk:
            self._buffer += chunk
            if len(self._buffer) > MAX_ANSWER_BYTES:
                self._fail(_garbage(f"more than {MAX_ANSWER_BYTES // 1024} KiB"))
            return
        if not self._buffer:                 # EOF, nothing said: say how it ended
            self._fail(OSError(errno.EIO, self._silent_end()))
            return
        try:
            addresses = parse_answer(bytes(self._buffer))
        except OSError as exc:
            self._fail(exc)
            return
        self._close()
        self._on_done(addresses)

    def on_writable(self) -> None:
        pass

    def abort(self, exc: BaseException) -> None:
        """A bug of ours while reading: still give the caller its one answer."""
        if not self.closed:
            self._fail(OSError(errno.EIO, f"resolver failed: {type(exc).__name__}: {exc}"))

    def cancel(self) -> None:
        """Kill the helper; no callback is called after this (idempotent)."""
        if not self.closed:
            self._close()

    # -- inside ----------------------------------------------------------------------------

    def _timed_out(self) -> None:
        self._timer = None
        if not self.closed:
            self._fail(TimeoutError(errno.ETIMEDOUT, "no answer from the resolver after "
                                                     f"{self._timeout_s:g} s"))

    def _start_failed(self, exc: OSError) -> None:
        if not self.closed:
            self.closed = True
            self._on_failed(exc)

    def _fail(self, exc: OSError) -> None:
        self._close()
        self._on_failed(exc)

    def _silent_end(self) -> str:
        try:
            status = self._proc.poll() if self._proc is not None else None
        except OSError:
            status = None
        if status is not None and status < 0:
            return f"the resolver helper was killed by signal {-status} without answering"
        if status:
            return f"the resolver helper exited with status {status} without answering"
        return "the resolver helper ended without answering"

    def _close(self) -> None:
        """Stop everything: timer, pipe, helper (SIGKILL unless it has exited), reaping."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        proc, self._proc = self._proc, None
        if proc is None:
            return
        self._reactor.remove_handler(self._fd)
        try:
            proc.stdout.close()
        except OSError:
            pass
        self._fd = -1
        _kill(proc)
        _reap(self._reactor, proc, 0)


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL by PID, unless already reaped: an unreaped child's PID cannot be reused."""
    try:
        if proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGKILL)
    except OSError:                      # gone already (ESRCH), or reaped elsewhere (ECHILD)
        pass


def _reap(reactor: Reactor, proc: subprocess.Popen, attempt: int) -> None:
    """``waitpid(WNOHANG)``, again from a timer until the child is gone."""
    try:
        if proc.poll() is not None:
            return
    except OSError:
        return
    if attempt < len(REAP_DELAYS_S):
        reactor.call_later(REAP_DELAYS_S[attempt], _reap, reactor, proc, attempt + 1)

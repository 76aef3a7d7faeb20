"""An output stream (stdout, stderr) as one more non-blocking transport of the loop.

A program that writes to a blocking stdout stops dead when whatever reads it
stops reading (a pipe nobody drains, a terminal after Ctrl-S): signals,
timers and sockets all wait for that one ``write``. So the fd is made
non-blocking and written the way a socket is (asyncio's
``_SelectorTransport``, tornado's ``IOStream``):

* ``write()`` tries one ``os.write`` when nothing is buffered; what the fd
  does not take is kept in a buffer and write interest goes on. The writable
  handler writes more and turns interest off once the buffer is empty.
  Interest is computed from state, never toggled ad hoc.
* *Water marks* tell the layers above when to hold back: above ``high`` a
  mark calls ``on_high()`` once, and once the buffer is down to ``low`` it
  calls ``on_low()`` (asyncio's strict-above semantics). Several marks may
  watch one stream (say: stop reading the network at 256 KiB, stop running
  commands at 1 MiB).
* Not every fd can be polled: epoll refuses regular files and ``/dev/null``
  (EPERM, see :mod:`reactor.stdio`). Those never block on write, so writing
  to them simply succeeds; should one ever refuse (EAGAIN) the stream tries
  again from a timer instead of from the selector.
* A write error (EPIPE: the reader went away; EIO: the terminal hung up;
  EBADF ...) *loses* the stream: the buffer is dropped, nothing more is
  written, and the ``when_lost`` callbacks run once, from the ready queue.

O_NONBLOCK belongs to the open file description, which stdout often shares
with stdin, stderr and the shell that started us. So the original flags are
kept, given back by :meth:`release` (Ctrl-Z: the shell gets its terminal back
as it lent it) and :meth:`close`, and taken again by :meth:`reclaim`.
"""

from __future__ import annotations

import fcntl
import os
import stat
import sys
from typing import Callable

from .loop import EVENT_WRITE, Reactor

# How soon an fd that cannot be polled is tried again after it refused a write.
UNPOLLABLE_RETRY_S = 0.05
# Linux only (the constant is in fcntl from Python 3.10; it is 1031 on every Linux).
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031 if sys.platform.startswith("linux") else None)


class _Mark:
    __slots__ = ("high", "low", "on_high", "on_low", "above")

    def __init__(self, high: int, low: int, on_high: Callable[[], None],
                 on_low: Callable[[], None]) -> None:
        self.high, self.low, self.on_high, self.on_low = high, low, on_high, on_low
        self.above = False


class OutputStream:
    """Writes to ``fd`` without ever blocking; see the module docstring."""

    def __init__(self, reactor: Reactor, fd: int, pipe_bytes: int = 0) -> None:
        self._reactor = reactor
        self.fd = fd
        self._on_lost: list[Callable[[OSError], None]] = []
        self._buffer = bytearray()
        self._marks: list[_Mark] = []
        self._drained: list[Callable[[], None]] = []
        self._retry = None
        self._watching = False
        self.closed = False               # closed or lost: nothing more is written
        self.lost: OSError | None = None  # why the stream was lost, if it was
        self._saved_flags: int | None = None
        self.pollable = self._probe()
        self.reclaim()
        if pipe_bytes:
            self._grow_pipe(pipe_bytes)

    def _probe(self) -> bool:
        try:
            self._reactor.set_handler(self.fd, self, EVENT_WRITE)
        except (OSError, ValueError):
            return False   # EPERM: a regular file or /dev/null, which never blocks
        self._reactor.set_handler(self.fd, self, 0)
        return True

    def _grow_pipe(self, size: int) -> None:
        """A pipe holds 64 KiB; ask for ``size``, so a reader that drains in bursts
        finds a burst's worth waiting (Linux; quietly nothing elsewhere).

        Pipe buffers count against a per-user quota (``pipe-user-pages-soft``,
        64 MiB by default), past which the user's *new* pipes get 8 KiB: ask
        for a modest size, for one stream.
        """
        try:
            if F_SETPIPE_SZ is not None and stat.S_ISFIFO(os.fstat(self.fd).st_mode):
                fcntl.fcntl(self.fd, F_SETPIPE_SZ, size)
        except OSError:
            pass   # not Linux, or over the user's pipe quota: keep the default

    # -- the fd's flags -----------------------------------------------------------------

    def reclaim(self) -> None:
        """Make the fd non-blocking (again), remembering how it was."""
        if self.closed:
            return
        try:
            flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
            if self._saved_flags is None:
                self._saved_flags = flags
            fcntl.fcntl(self.fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        except OSError:
            pass   # a closed fd: the first write will say so

    def release(self) -> None:
        """Give the fd its original flags back (before stopping, or at the end)."""
        if self._saved_flags is not None:
            try:
                fcntl.fcntl(self.fd, fcntl.F_SETFL, self._saved_flags)
            except OSError:
                pass
            self._saved_flags = None

    # -- writing ---------------------------------------------------------------------------

    def get_buffer_size(self) -> int:
        return len(self._buffer)

    def write(self, data: bytes) -> None:
        if self.closed or not data:
            return
        if self._buffer:
            self._buffer += data
        else:
            written = self._write_some(data)
            if isinstance(written, OSError):
                self._lose(written)
                return
            if written < len(data):
                self._buffer += memoryview(data)[written:]
        self._update()

    def _write_some(self, data) -> int | OSError:
        """One ``os.write``: the bytes written (0 if the fd is full), or the error."""
        try:
            return os.write(self.fd, data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            return exc

    def on_writable(self) -> None:
        if self.closed:
            return
        if self._buffer:
            with memoryview(self._buffer) as view:
                written = self._write_some(view)
            if isinstance(written, OSError):
                self._lose(written)
                return
            del self._buffer[:written]
        self._update()

    def on_readable(self) -> None:
        pass   # registered for writing only

    def _update(self) -> None:
        """Interest from state: watch (or retry) while anything is buffered."""
        want = bool(self._buffer) and not self.closed
        if self.pollable:
            if want != self._watching:
                self._watching = want
                self._reactor.set_handler(self.fd, self, EVENT_WRITE if want else 0)
        elif want and self._retry is None:
            self._retry = self._reactor.call_later(UNPOLLABLE_RETRY_S, self._retry_write)
        self._check_marks()
        if not self._buffer and self._drained:
            waiting, self._drained = self._drained, []
            for callback in waiting:
                self._reactor.call_soon(callback)

    def _retry_write(self) -> None:
        self._retry = None
        self.on_writable()

    def _check_marks(self) -> None:
        size = len(self._buffer)
        for mark in self._marks:
            if not mark.above and size > mark.high:
                mark.above = True
                mark.on_high()
            elif mark.above and size <= mark.low:
                mark.above = False
                mark.on_low()

    # -- what the layers above watch --------------------------------------------------------

    def add_water_marks(self, high: int, low: int, on_high: Callable[[], None],
                        on_low: Callable[[], None]) -> None:
        """Call ``on_high()`` when more than ``high`` bytes wait, ``on_low()`` at ``low``."""
        if not 0 <= low <= high:
            raise ValueError(f"water marks need 0 <= low <= high, not {low} and {high}")
        self._marks.append(_Mark(high, low, on_high, on_low))
        self._check_marks()

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (from the ready queue) once nothing is left to write."""
        if self._buffer and not self.closed:
            self._drained.append(callback)
        else:
            self._reactor.call_soon(callback)

    def when_lost(self, callback: Callable[[OSError], None]) -> None:
        """Call ``callback(exc)`` (from the ready queue) if a write fails for good."""
        self._on_lost.append(callback)

    # -- the end ----------------------------------------------------------------------------------

    def _lose(self, exc: OSError) -> None:
        self.lost = exc
        self._buffer.clear()
        self._stop_watching()
        self.closed = True
        self._update()      # marks go low, drain waiters run: nothing is waiting any more
        for callback in self._on_lost:
            self._reactor.call_soon(callback, exc)

    def _stop_watching(self) -> None:
        if self._watching:
            self._watching = False
            self._reactor.remove_handler(self.fd)
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    def close(self) -> int:
        """One last non-blocking try, then stop; returns the bytes left unwritten.

        Never waits: a reader that is not reading does not keep us alive.
        The fd itself stays open (it is stdout); its flags are given back.
        """
        if not self.closed:
            if self._buffer:
                self.on_writable()
            self._stop_watching()
            self.closed = True
        self.release()
        left = len(self._buffer)
        self._buffer.clear()
        return left

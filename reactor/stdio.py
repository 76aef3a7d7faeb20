"""Standard input as one more event source of the loop.

stdin is read with ``os.read`` and nothing else: ``sys.stdin.readline()``
after ``select`` would strand lines in Python's own buffer where ``select``
cannot see them.

Not every stdin can be polled. epoll refuses regular files and ``/dev/null``
(EPERM) and macOS's kqueue refuses ``/dev/null`` and sometimes a terminal
(EINVAL). :func:`choose_selector` probes the default selector once:

* a regular file or ``/dev/null`` never blocks on read, so the reader does
  not poll it at all: it reads one chunk per loop turn from the ready queue;
* anything else that the default selector refuses (a terminal on macOS) is
  polled with ``select()``, which accepts every kind of fd.
"""

from __future__ import annotations

import os
import selectors
import stat
from typing import Callable

from .loop import EVENT_READ, Reactor

STDIN_CHUNK_BYTES = 65536


def _never_blocks(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return True
    if stat.S_ISREG(mode):
        return True
    return stat.S_ISCHR(mode) and not os.isatty(fd)  # /dev/null, /dev/zero


def choose_selector(fd: int = 0) -> tuple[selectors.BaseSelector, bool]:
    """Return ``(selector, pollable)`` for a loop that must also read ``fd``."""
    selector = selectors.DefaultSelector()
    try:
        selector.register(fd, EVENT_READ)
    except (OSError, ValueError):
        if _never_blocks(fd):
            return selector, False
        selector.close()
        return selectors.SelectSelector(), True
    selector.unregister(fd)
    return selector, True


class StdinReader:
    """Reads ``fd`` in chunks and hands the bytes on; EOF is reported once."""

    __slots__ = ("_reactor", "_fd", "_on_data", "_on_eof", "_pollable", "_paused",
                 "closed", "_scheduled")

    def __init__(self, reactor: Reactor, fd: int, pollable: bool,
                 on_data: Callable[[bytes], None], on_eof: Callable[[], None]) -> None:
        self._reactor = reactor
        self._fd = fd
        self._on_data = on_data
        self._on_eof = on_eof
        self._pollable = pollable
        self._paused = False
        self.closed = False
        self._scheduled = False
        self._watch()

    def _watch(self) -> None:
        if self.closed or self._paused:
            return
        if self._pollable:
            self._reactor.set_handler(self._fd, self, EVENT_READ)
        elif not self._scheduled:
            self._scheduled = True
            self._reactor.call_soon(self._poll_unpollable)

    def _poll_unpollable(self) -> None:
        self._scheduled = False
        if not self.closed and not self._paused:
            self.on_readable()
            self._watch()

    def pause_reading(self) -> None:
        """Stop reading (the command queue is full); resume_reading() undoes it."""
        if not self._paused:
            self._paused = True
            if self._pollable and not self.closed:
                self._reactor.remove_handler(self._fd)

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            self._watch()

    def on_readable(self) -> None:
        try:
            data = os.read(self._fd, STDIN_CHUNK_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # EIO on a terminal that went away, EBADF: treat as EOF
        if data:
            self._on_data(data)
        else:
            self.close()
            self._on_eof()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._pollable:
                self._reactor.remove_handler(self._fd)

    def abort(self, exc: BaseException | None = None) -> None:
        self.close()

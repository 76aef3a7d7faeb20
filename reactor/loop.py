"""The reactor: one selector, one thread, every event routed to a handler.

A handler is any object with ``on_readable()`` and/or ``on_writable()`` and a
``closed`` attribute; the reactor knows nothing else about it. One turn of
the loop (``run_once``) is, in order:

1. Work out how long to sleep: not at all if callbacks are ready or a stop
   was asked for, else until the nearest timer, else forever.
2. ``select``.
3. Dispatch each ready file descriptor. A key that an earlier handler of the
   same batch unregistered (or whose fd was closed and reused) is skipped,
   and a handler that closed itself while reading is not asked to write.
   An exception in a handler is reported once and aborts *that handler*
   only; ``KeyboardInterrupt`` and ``SystemExit`` always propagate.
   Dispatching stops after ``dispatch_budget_s`` (5 ms): the events left are
   handled first in the next turn, which does not sleep. Each handler reads
   a bounded amount, but fifty of them in one turn (and the output that makes)
   would keep the loop from everything else for tens of milliseconds; this
   way a flood costs its turns, never one long stall, and nobody is skipped.
4. Run the timers that are due (skipping one that an earlier timer of the
   same batch cancelled, as asyncio does).
5. Run the callbacks that were ready when this phase began (callbacks they
   schedule wait for the next turn, so a chain of them cannot starve I/O).
6. Run the end-of-turn calls (transports send what was written this turn).
7. Run the after-turn hooks (the console flushes its output once per turn).

Signals: ``signal.set_wakeup_fd`` makes a signal write a byte to a socket the
selector watches, so a SIGTERM wakes a sleeping ``select`` at once instead of
being retried away by PEP 475.
"""

from __future__ import annotations

import collections
import selectors
import signal
import socket
import time
from typing import Any, Callable

from .timers import TimerHandle, TimerQueue

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE

# Upper bound on one select() sleep, so a clock oddity can never park the loop.
MAX_SELECT_TIMEOUT_S = 24 * 3600.0
DISPATCH_BUDGET_S = 0.005   # one turn's dispatching; what is left goes first next turn


def write_stderr(message: str) -> None:
    """One line on stderr, never waiting for it (a stderr nobody reads must not hang us,
    and a closed one leaves nothing to complain to)."""
    import os
    try:
        blocking = os.get_blocking(2)
        os.set_blocking(2, False)
        try:
            os.write(2, (message + "\n").encode("utf-8", "backslashreplace"))
        finally:
            os.set_blocking(2, blocking)
    except OSError:
        pass


class Reactor:
    def __init__(self, selector: selectors.BaseSelector | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 report_error: Callable[[str], None] = write_stderr,
                 dispatch_budget_s: float = DISPATCH_BUDGET_S) -> None:
        self.selector = selector if selector is not None else selectors.DefaultSelector()
        self._dispatch_budget_s = dispatch_budget_s
        self._deferred: list = []       # ready events a turn had no time left for
        self._fd_map = self.selector.get_map()
        self._timers = TimerQueue(clock)
        self._ready: collections.deque = collections.deque()
        self._after_turn: list[Callable[[], None]] = []
        self._before_flush: list[Callable[[], None]] = []
        self._end_of_turn: list[Callable[[], None]] = []
        self._stopping = False
        self._report_error = report_error
        self._wakeup_reader: socket.socket | None = None
        self._wakeup_writer: socket.socket | None = None
        self._old_wakeup_fd: int | None = None
        self._signal_callbacks: dict[int, Callable[[int], None]] = {}

    # -- time -----------------------------------------------------------

    def time(self) -> float:
        return self._timers.clock()

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        return self._timers.call_later(delay, callback, *args)

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        self._ready.append((callback, args))

    def call_at_end_of_turn(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once, when this turn's I/O and callbacks are done.

        Transports use it to send everything written during a turn with one
        system call per connection instead of one per message.
        """
        self._end_of_turn.append(callback)

    def add_before_flush(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` every turn, after its events, timers and callbacks and before
        the end-of-turn callbacks send what the turn wrote: what must be on disk before
        bytes leave (a program's record of what it sends) is written there."""
        self._before_flush.append(callback)

    def add_after_turn(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` at the end of every turn (after all I/O of it)."""
        self._after_turn.append(callback)

    # -- file descriptors ------------------------------------------------

    def set_handler(self, fd: int, handler: Any, events: int) -> None:
        """Watch ``fd`` for ``events`` on behalf of ``handler``.

        Registers, modifies or (for ``events == 0``) unregisters as needed and
        touches the selector only when something changes.
        """
        key = self._fd_map.get(fd)
        if key is None:
            if events:
                self.selector.register(fd, events, handler)
        elif not events:
            self.selector.unregister(fd)
        elif key.events != events or key.data is not handler:
            self.selector.modify(fd, events, handler)

    def remove_handler(self, fd: int) -> None:
        if self._fd_map.get(fd) is not None:
            self.selector.unregister(fd)

    # -- signals ----------------------------------------------------------

    def add_signal_handler(self, signum: int, callback: Callable[[int], None]) -> None:
        """Run ``callback(signum)`` from the loop (not from the signal frame)."""
        if self._wakeup_reader is None:
            self._wakeup_reader, self._wakeup_writer = socket.socketpair()
            self._wakeup_reader.setblocking(False)
            self._wakeup_writer.setblocking(False)
            self.set_handler(self._wakeup_reader.fileno(), _WakeupDrain(self._wakeup_reader),
                             EVENT_READ)
            self._old_wakeup_fd = signal.set_wakeup_fd(self._wakeup_writer.fileno(),
                                                       warn_on_full_buffer=False)
        self._signal_callbacks[signum] = callback
        signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Runs between two bytecodes of the loop thread: only queue the work.
        callback = self._signal_callbacks.get(signum)
        if callback is not None:
            self._ready.append((callback, (signum,)))

    # -- running ------------------------------------------------------------

    def stop(self) -> None:
        """Make ``run()`` return after the current turn."""
        self._stopping = True

    def run(self) -> None:
        self._stopping = False
        while not self._stopping:
            self.run_once()

    def run_once(self) -> None:
        if self._ready or self._end_of_turn or self._stopping or self._deferred:
            timeout: float | None = 0.0
        else:
            timeout = self._timers.maybe_next_delay()
            if timeout is not None:
                timeout = min(timeout, MAX_SELECT_TIMEOUT_S)
        events = self.selector.select(timeout)
        if self._deferred:            # last turn's leftovers first, then the others
            deferred, self._deferred = self._deferred, []
            waited = {key.fd for key, _ in deferred}
            events = deferred + [event for event in events if event[0].fd not in waited]
        fd_map = self._fd_map
        deadline = time.perf_counter() + self._dispatch_budget_s
        for index, (key, mask) in enumerate(events):
            if index and time.perf_counter() >= deadline:
                self._deferred = events[index:]
                break
            handler = key.data
            if fd_map.get(key.fd) is not key:
                continue  # unregistered earlier in this batch (or changed since deferred)
            try:
                if mask & EVENT_READ:
                    handler.on_readable()
                if mask & EVENT_WRITE and not handler.closed and fd_map.get(key.fd) is key:
                    handler.on_writable()
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - isolate the failing handler
                self._handler_failed(handler, exc)
        for timer in self._timers.pop_due():
            if not timer.cancelled:       # an earlier timer of this batch may cancel it
                self._run_callback(timer.callback, timer.args)
        for _ in range(len(self._ready)):
            callback, args = self._ready.popleft()
            self._run_callback(callback, args)
        for hook in self._before_flush:
            self._run_callback(hook, ())
        while self._end_of_turn:
            batch, self._end_of_turn = self._end_of_turn, []
            for callback in batch:
                self._run_callback(callback, ())
        for hook in self._after_turn:
            self._run_callback(hook, ())

    def _run_callback(self, callback: Callable[..., Any], args: tuple) -> None:
        try:
            callback(*args)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001
            self.report_failure(_name_of(callback), exc)

    def report_failure(self, where: str, exc: BaseException) -> None:
        """A bug was caught and contained in ``where``: say so, once, on stderr."""
        self._report_error(f"internal error in {where}: {type(exc).__name__}: {exc}")

    def _handler_failed(self, handler: Any, exc: Exception) -> None:
        self.report_failure(type(handler).__name__, exc)
        abort = getattr(handler, "abort", None)
        if abort is not None:
            try:
                abort(exc)
            except Exception:  # noqa: BLE001 - already reporting a failure
                pass

    def close(self) -> None:
        if self._wakeup_reader is not None:
            try:
                signal.set_wakeup_fd(self._old_wakeup_fd if self._old_wakeup_fd is not None else -1)
            except (ValueError, OSError):
                pass
            self.remove_handler(self._wakeup_reader.fileno())
            self._wakeup_reader.close()
            self._wakeup_writer.close()
            self._wakeup_reader = self._wakeup_writer = None
        self.selector.close()


class _WakeupDrain:
    """Empties the signal wakeup socket; the callbacks are already queued."""

    closed = False

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def on_readable(self) -> None:
        try:
            while self._sock.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass


def _name_of(callback: Callable[..., Any]) -> str:
    return getattr(callback, "__qualname__", None) or type(callback).__name__

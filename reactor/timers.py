"""Timers: a heap of deadlines with lazy cancellation.

Cancelling a timer only marks it; the heap drops cancelled entries when they
reach the top, or all at once when they outnumber the live ones (so a peer
that re-arms a timeout on every message cannot grow the heap without bound).
``_cancelled_count`` is the number of cancelled entries *still in the heap*: a
handle that has left it (popped as due, whether it has run yet or not) no
longer belongs to the queue, and cancelling it then only stops it from running.
The clock is injected, ``time.monotonic`` by default, so tests can drive time
by hand and wall-clock jumps never fire or stall a timer.
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Any, Callable


class TimerHandle:
    """A scheduled call; ``cancel()`` it to stop it from running."""

    __slots__ = ("when", "callback", "args", "cancelled", "_seq", "_queue")

    def __init__(self, when: float, seq: int, callback: Callable[..., Any],
                 args: tuple, queue: "TimerQueue") -> None:
        self.when = when
        self._seq = seq
        self.callback = callback
        self.args = args
        self.cancelled = False
        self._queue = queue

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.callback = None  # drop references early
            self.args = ()
            queue = self._queue
            if queue is not None:     # still in the heap: one more dead entry there
                queue._cancelled_count += 1

    def __lt__(self, other: "TimerHandle") -> bool:
        return (self.when, self._seq) < (other.when, other._seq)


class TimerQueue:
    """Deadlines in a heap; the reactor asks it how long it may sleep."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._heap: list[TimerHandle] = []
        self._seq = itertools.count()
        self._cancelled_count = 0

    def __len__(self) -> int:
        return len(self._heap) - self._cancelled_count

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        handle = TimerHandle(when, next(self._seq), callback, args, self)
        heapq.heappush(self._heap, handle)
        return handle

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        return self.call_at(self.clock() + delay, callback, *args)

    def _compact(self) -> None:
        if self._cancelled_count > 64 and self._cancelled_count * 2 > len(self._heap):
            self._heap = [h for h in self._heap if not h.cancelled]
            heapq.heapify(self._heap)
            self._cancelled_count = 0
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
            self._cancelled_count -= 1

    def maybe_next_delay(self) -> float | None:
        """Seconds until the nearest live timer (0 if overdue), or ``None``."""
        self._compact()
        if not self._heap:
            return None
        return max(0.0, self._heap[0].when - self.clock())

    def pop_due(self) -> list[TimerHandle]:
        """Remove and return the timers whose time has come, earliest first.

        The caller runs them in order and must skip any that ``cancelled`` by then
        (an earlier one of the batch may cancel a later one).
        """
        heap = self._heap
        if not heap:
            return []
        now = self.clock()
        if heap[0].when > now:       # the common case: nothing due yet
            return []
        due = []
        while heap and heap[0].when <= now:
            handle = heapq.heappop(heap)
            handle._queue = None      # out of the heap: a later cancel() is not counted
            if handle.cancelled:
                self._cancelled_count -= 1
            else:
                due.append(handle)
        return due

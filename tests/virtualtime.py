"""Turning an in-process reactor from a test, on real or on virtual time."""

from __future__ import annotations

import selectors
import time

from reactor.loop import Reactor


def run_reactor_until(reactor, condition, timeout: float = 10.0) -> None:
    """Turn an in-process Reactor until ``condition()`` holds (or fail at the deadline).

    ``timeout`` is real time, whatever the reactor's clock.
    """
    deadline = time.monotonic() + timeout
    jumps = isinstance(reactor.selector, AutojumpSelector)
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        if not jumps:
            reactor.call_later(0.01, lambda: None)   # never sleep in select() forever
        reactor.run_once()


class VirtualClock:
    """A clock that only moves when told (``AutojumpSelector`` tells it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class AutojumpSelector(selectors.DefaultSelector):
    """The real selector, on virtual time: when the loop would sleep until its next timer
    and ``quiet_s`` of real time pass with no socket ready, the clock jumps to that timer.

    So a test of timeouts (a flush limit, an idle eviction, a heartbeat) on real
    loopback sockets takes the milliseconds its sockets take, not the seconds its
    timers say. Sockets between the reactor's own objects and the test are ready
    within microseconds on loopback; ``quiet_s`` is the margin for that. (A test
    with a delay outside the reactor, such as ``DelayProxy``, needs real time.)
    """

    def __init__(self, clock: VirtualClock, quiet_s: float = 0.005) -> None:
        super().__init__()
        self.clock = clock
        self.quiet_s = quiet_s
        self.jumps = 0       # a test of what should need no timer can assert none came

    def select(self, timeout: float | None = None):
        if timeout is not None and timeout <= 0:
            return super().select(0)
        events = super().select(self.quiet_s)
        if not events and timeout is not None:
            self.clock.now += timeout
            self.jumps += 1
        return events


def virtual_time_reactor(quiet_s: float = 0.005):
    """A Reactor on virtual time (see ``AutojumpSelector``)."""
    clock = VirtualClock()
    return Reactor(AutojumpSelector(clock, quiet_s), clock=clock)

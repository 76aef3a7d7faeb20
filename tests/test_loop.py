"""The reactor and its timers, on socketpairs and a hand-driven clock."""

from __future__ import annotations

import os
import select
import signal
import socket
import time

from reactor.loop import EVENT_READ, EVENT_WRITE, Reactor
from reactor.timers import TimerQueue
from virtualtime import run_reactor_until


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Recorder:
    closed = False

    def __init__(self, sock, log, name, fail=False):
        self.sock, self.log, self.name, self.fail = sock, log, name, fail

    def on_readable(self):
        self.log.append((self.name, "read", self.sock.recv(100)))
        if self.fail:
            raise ValueError("handler bug")

    def on_writable(self):
        self.log.append((self.name, "write"))

    def abort(self, exc):
        self.log.append((self.name, "abort", str(exc)))


def test_timers_fire_in_order_with_ties_in_insertion_order():
    clock = Clock()
    q = TimerQueue(clock)
    fired = []
    q.call_later(2, fired.append, "b")
    q.call_later(1, fired.append, "a1")
    q.call_later(1, fired.append, "a2")
    cancelled = q.call_later(1.5, fired.append, "never")
    cancelled.cancel()
    assert q.maybe_next_delay() == 1
    clock.now += 1.5
    for t in q.pop_due():
        t.callback(*t.args)
    assert fired == ["a1", "a2"]
    assert q.maybe_next_delay() == 0.5
    clock.now += 1
    for t in q.pop_due():
        t.callback(*t.args)
    assert fired == ["a1", "a2", "b"] and q.maybe_next_delay() is None


def test_many_cancelled_timers_are_compacted():
    q = TimerQueue(Clock())
    handles = [q.call_later(10 + i, print) for i in range(1000)]
    for h in handles[:-1]:
        h.cancel()
    q.maybe_next_delay()
    assert len(q._heap) < 100 and len(q) == 1


def _dead_entries_in_heap(q):
    return sum(1 for h in q._heap if h.cancelled)


def test_a_timer_cancelled_by_another_due_in_the_same_turn_does_not_run():
    clock = Clock()
    errors = []
    reactor = Reactor(clock=clock, report_error=errors.append)
    log = []
    handles = {}

    def first():
        log.append("first")
        handles["second"].cancel()        # due in this same turn, already popped

    handles["first"] = reactor.call_later(1, first)
    handles["second"] = reactor.call_later(1, log.append, "second")
    handles["third"] = reactor.call_later(1, log.append, "third")
    clock.now += 1
    reactor.run_once()
    assert log == ["first", "third"] and errors == []
    # The cancelled one had left the heap: it is not counted as a dead entry in it.
    queue = reactor._timers
    assert queue._cancelled_count == _dead_entries_in_heap(queue) == 0 and len(queue) == 0
    reactor.close()


def test_cancelling_a_timer_that_has_left_the_heap_does_not_change_the_count():
    clock = Clock()
    q = TimerQueue(clock)
    fired = q.call_later(1, print)
    live = q.call_later(5, print)
    dead = q.call_later(6, print)
    dead.cancel()
    clock.now += 1
    assert q.pop_due() == [fired]
    fired.cancel()                        # after it ran: a no-op for the queue
    fired.cancel()
    assert q._cancelled_count == _dead_entries_in_heap(q) == 1
    assert len(q) == 1 and q.maybe_next_delay() == 4
    clock.now += 10
    assert q.pop_due() == [live]
    live.cancel()
    assert q._cancelled_count == _dead_entries_in_heap(q) == 0 and len(q) == 0
    # Many fired-then-cancelled handles: no drift, so no compaction of live timers' heap
    # on a false count, and __len__ never goes below zero.
    keep = [q.call_later(100 + i, print) for i in range(10)]
    for _ in range(200):
        h = q.call_later(0, print)
        assert q.pop_due() == [h]
        h.cancel()
    assert q._cancelled_count == 0 and len(q) == len(keep) == len(q._heap)


def test_read_and_write_events_are_dispatched_and_interest_is_respected():
    reactor = Reactor()
    a, b = socket.socketpair()
    log = []
    handler = Recorder(a, log, "a")
    reactor.set_handler(a.fileno(), handler, EVENT_READ)
    b.send(b"hi")
    run_reactor_until(reactor, lambda: log)
    assert log == [("a", "read", b"hi")]
    reactor.set_handler(a.fileno(), handler, EVENT_READ | EVENT_WRITE)
    assert reactor.selector.get_key(a.fileno()).events == EVENT_READ | EVENT_WRITE
    run_reactor_until(reactor, lambda: ("a", "write") in log)
    reactor.set_handler(a.fileno(), handler, 0)
    assert reactor.selector.get_map().get(a.fileno()) is None
    reactor.close()
    a.close()
    b.close()


def test_a_failing_handler_is_reported_and_aborted_alone():
    errors = []
    reactor = Reactor(report_error=errors.append)
    pairs = [socket.socketpair() for _ in range(2)]
    log = []
    bad = Recorder(pairs[0][0], log, "bad", fail=True)
    good = Recorder(pairs[1][0], log, "good")
    reactor.set_handler(pairs[0][0].fileno(), bad, EVENT_READ)
    reactor.set_handler(pairs[1][0].fileno(), good, EVENT_READ)
    pairs[0][1].send(b"x")
    pairs[1][1].send(b"y")
    run_reactor_until(reactor, lambda: ("good", "read", b"y") in log and ("bad", "abort", "handler bug")
              in log)
    assert errors == ["internal error in Recorder: ValueError: handler bug"]
    reactor.close()
    for p in pairs:
        p[0].close()
        p[1].close()


def test_a_key_unregistered_earlier_in_the_batch_is_skipped():
    reactor = Reactor()
    (a1, a2), (b1, b2) = socket.socketpair(), socket.socketpair()
    log = []

    class Closer(Recorder):
        def on_readable(self):
            log.append(self.name)
            for sock in (a1, b1):
                reactor.remove_handler(sock.fileno())

    reactor.set_handler(a1.fileno(), Closer(a1, log, "a"), EVENT_READ)
    reactor.set_handler(b1.fileno(), Closer(b1, log, "b"), EVENT_READ)
    a2.send(b"x")
    b2.send(b"y")
    deadline = time.monotonic() + 5
    while len(select.select([a1, b1], [], [], 0.1)[0]) < 2:  # both readable, for sure
        assert time.monotonic() < deadline
    reactor.run_once()
    assert len(log) == 1   # whichever ran first removed the other: it must not run
    reactor.close()
    for s in (a1, a2, b1, b2):
        s.close()


def test_call_soon_chains_wait_for_the_next_turn_and_hooks_run_after_each_turn():
    reactor = Reactor()
    log = []

    def first():
        log.append("first")
        reactor.call_soon(lambda: log.append("second"))

    reactor.call_soon(first)
    reactor.add_after_turn(lambda: log.append("hook"))
    reactor.run_once()
    assert log == ["first", "hook"]
    reactor.run_once()
    assert log == ["first", "hook", "second", "hook"]
    reactor.close()


def test_call_later_runs_on_the_injected_clock_and_stop_ends_run():
    clock = Clock()
    reactor = Reactor(clock=clock)
    log = []

    def jump():
        log.append(("jump", clock.now))
        clock.now += 10

    def stop():
        log.append(("stop", clock.now))
        reactor.stop()

    reactor.call_later(5, stop)
    reactor.call_later(1, jump)
    reactor.call_later(30, lambda: log.append(("too late", clock.now)))
    clock.now += 1
    reactor.run()   # returns only because the jump moved time past the stop
    assert log == [("jump", 101.0), ("stop", 111.0)]
    assert reactor._timers.maybe_next_delay() == 130.0 - 111.0    # the third is still due
    reactor.close()


def test_a_signal_wakes_a_select_that_would_sleep_forever():
    reactor = Reactor()
    got = []
    old = signal.getsignal(signal.SIGUSR1)
    try:
        reactor.add_signal_handler(signal.SIGUSR1, got.append)
        os.kill(os.getpid(), signal.SIGUSR1)
        started = time.monotonic()
        while not got:
            reactor.run_once()     # no timers: select(None) would block without the wakeup fd
            assert time.monotonic() - started < 5
        assert got == [signal.SIGUSR1]
    finally:
        signal.signal(signal.SIGUSR1, old)
        reactor.close()


def test_before_flush_hooks_run_after_the_turns_callbacks_and_before_its_end_of_turn_ones():
    reactor = Reactor()
    log = []

    def callback():
        log.append("callback")
        reactor.call_at_end_of_turn(lambda: log.append("end of turn"))
    reactor.call_soon(callback)
    reactor.add_before_flush(lambda: log.append("before flush"))
    reactor.add_after_turn(lambda: log.append("after turn"))
    reactor.run_once()
    assert log == ["callback", "before flush", "end of turn", "after turn"]
    reactor.close()


def test_a_turn_out_of_dispatch_time_leaves_the_rest_for_the_next_turn_first():
    # A budget of 0: one handler per turn. Every ready socket is still served, in turn,
    # and one that stays ready is not served again before the others.
    reactor = Reactor(dispatch_budget_s=0.0)
    served = []

    class Reader:
        closed = False

        def __init__(self, name, sock):
            self.name, self.sock = name, sock

        def on_readable(self):
            served.append(self.name)
            self.sock.recv(1)          # one byte a time: it stays ready

    pairs = [socket.socketpair() for _ in range(3)]
    for name, (ours, theirs) in zip("abc", pairs):
        theirs.sendall(b"xx")
        reactor.set_handler(ours.fileno(), Reader(name, ours), EVENT_READ)
    reactor.run_once()
    assert len(served) == 1                    # out of time after the first
    for _ in range(5):
        reactor.run_once()
    assert sorted(served[:3]) == ["a", "b", "c"] and sorted(served[3:]) == ["a", "b", "c"]
    for ours, theirs in pairs:
        reactor.remove_handler(ours.fileno())
        ours.close()
        theirs.close()
    reactor.close()

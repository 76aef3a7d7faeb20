"""Turning an in-process reactor from a test, on real or on virtual time."""

from __future__ import annotations

import os
import selectors
import socket
import struct
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


# -- is anything still moving on loopback? (Linux) ------------------------------------------
#
# What makes a jump sound. The tests' sockets all live in this one thread and talk over
# loopback, where the kernel does not deliver in its own time: a send() hands the packets
# to the loopback device, whose per-CPU backlog is processed in the softirq that runs
# when send() re-enables bottom halves, so by the time send() returns the bytes are in
# the receiving socket (it is readable), the SYN of a non-blocking connect has been
# answered (the connecting socket is writable, the listener readable), a FIN has been
# seen. Two things can still be on their way when select() says "nothing":
#
# * packets the softirq left to ksoftirqd (its budget ran out, or another task needed the
#   CPU: likely on a loaded machine). They wait in the loopback backlog, which
#   /proc/net/softnet_stat counts per CPU (the 12th column, kernels since 5.10);
# * ACKs the receiver delays (up to 200 ms, 40 ms typically on loopback): our socket with
#   a full send buffer becomes writable only then. tcpi_unacked > 0 says so.
#
# Neither can be waited for by a fixed quiet period (ksoftirqd may be starved for longer
# than any margin; a delayed ACK takes 40 ms, far more than 5 ms). So the selector asks
# the kernel: it jumps only when the backlog is empty and no registered TCP socket has a
# segment in flight, and then, having looked, a zero-timeout select still finds no fd
# ready; twice, a millisecond apart (a packet another CPU is delivering right now is in
# no queue for those few microseconds). From then on nothing can become ready without
# another system call of this thread, and this thread is about to sleep: the loop is
# idle by construction.
#
# One state stays "in flight" for good: a connect whose SYN a full accept queue dropped
# (``helpers.BlackHole``). Its SYN has left the backlog and no answer is coming (the kernel
# retries only after 1 s, 3 s ... of real time): a SYN_SENT socket with an empty backlog
# does not hold the jump. Virtual time does not model those real-time retries, nor
# keepalives, which no test relies on.

_SOFTNET_STAT = "/proc/net/softnet_stat"
_BACKLOG_COLUMN = 11             # input_pkt_queue + process_queue, per CPU
_TCP_SYN_SENT, _TCP_LISTEN = 2, 10
_TCPI_UNACKED_OFFSET = 24        # struct tcp_info: 8 bytes of u8 fields, then rto, ato,
_TCP_INFO_BYTES = 104            # snd_mss, rcv_mss, unacked (u32 each)


def loopback_backlog() -> int | None:
    """Packets handed to a network device and not yet delivered to their socket, on all
    CPUs; ``None`` where the kernel does not say (not Linux, or before 5.10)."""
    try:
        with open(_SOFTNET_STAT) as f:
            rows = [line.split() for line in f]
    except OSError:
        return None
    if not rows or any(len(row) <= _BACKLOG_COLUMN for row in rows):
        return None
    return sum(int(row[_BACKLOG_COLUMN], 16) for row in rows)


def tcp_in_flight(fd: int, backlog: int) -> bool:
    """Has this fd, if it is a connected TCP socket, sent a segment not yet acknowledged
    (one that can still make it writable, or reach its peer)?"""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return False             # not a socket (a pipe, a terminal)
    try:
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
            return False
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_BYTES)
    except OSError:
        return False
    finally:
        sock.detach()            # the fd stays the reactor's
    state = info[0]
    if state == _TCP_LISTEN:
        return False             # tcpi_unacked is the accept queue there, seen by select
    if state == _TCP_SYN_SENT and backlog == 0:
        return False             # its SYN was delivered and dropped: a full accept queue
    (unacked,) = struct.unpack_from("I", info, _TCPI_UNACKED_OFFSET)
    return unacked > 0


class AutojumpSelector(selectors.DefaultSelector):
    """The real selector, on virtual time: when the loop would sleep until its next timer
    and nothing can wake it, the clock jumps to that timer.

    "Nothing can wake it" is established, not guessed: every registered fd drained (a
    zero-timeout select returns nothing) *after* the kernel said that nothing is on its
    way on loopback, two looks in a row (see above). While something is, the selector waits for it in real
    time, a millisecond at a time, up to ``settle_limit_s`` (a segment in flight on
    loopback for that long would be a kernel anomaly; the jump then goes ahead and
    ``unsettled_jumps`` counts it). Where the kernel cannot be asked (not Linux), a quiet
    period of ``fallback_quiet_s`` stands in, as a guess.

    So a test of timeouts (a flush limit, an idle eviction, a heartbeat) on real loopback
    sockets takes the milliseconds its sockets take, not the seconds its timers say, on a
    machine however loaded. (A test with a delay outside the reactor, such as
    ``DelayProxy``, needs real time: ``pytest.mark.real_time``.)
    """

    def __init__(self, clock: VirtualClock, settle_limit_s: float = 2.0,
                 fallback_quiet_s: float = 0.005) -> None:
        super().__init__()
        self.clock = clock
        self.settle_limit_s = settle_limit_s
        self.fallback_quiet_s = fallback_quiet_s
        self.jumps = 0       # a test of what should need no timer can assert none came
        self.settle_waits = 0        # selects that waited for loopback to settle
        self.unsettled_jumps = 0     # jumps made although it had not (see above)

    def select(self, timeout: float | None = None):
        if timeout is not None and timeout <= 0:
            return super().select(0)
        events = self._until_idle()
        if events or timeout is None:
            return events            # no timer: nothing to jump to
        self.clock.now += timeout
        self.jumps += 1
        return []

    def _until_idle(self):
        """The ready fds, or ``[]`` once the loop is idle by construction."""
        if loopback_backlog() is None:
            return super().select(self.fallback_quiet_s)
        started = None
        clean = 0
        while True:
            busy = self._loopback_busy()
            events = super().select(0)          # after looking at the kernel, not before
            if events:
                return events
            if busy:
                clean = 0
                now = time.monotonic()
                if started is None:
                    started = now
                    self.settle_waits += 1
                elif now - started > self.settle_limit_s:
                    self.unsettled_jumps += 1
                    return []
            else:
                clean += 1
                if clean == 2:
                    return []
            # Let the kernel finish: a packet that another CPU's softirq has taken off the
            # backlog and not yet delivered is in no queue for a few microseconds; the
            # second look, a millisecond later, sees where it went. A real event ends the
            # wait at once.
            events = super().select(0.001)
            if events:
                return events

    def _loopback_busy(self) -> bool:
        backlog = loopback_backlog() or 0
        if backlog:
            return True
        return any(tcp_in_flight(fd, backlog) for fd in list(self.get_map()))


def virtual_time_reactor() -> Reactor:
    """A Reactor on virtual time (see ``AutojumpSelector``)."""
    clock = VirtualClock()
    return Reactor(AutojumpSelector(clock), clock=clock)

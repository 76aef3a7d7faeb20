"""OutputStream in-process: pipes, socketpairs, files and a pty, never blocking."""

import errno
import fcntl
import os
import pty
import selectors
import socket

import pytest

from reactor.loop import EVENT_WRITE, Reactor
from reactor.output import OutputStream
from virtualtime import run_reactor_until


@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def pipe_size(fd):
    return fcntl.fcntl(fd, 1032)   # F_GETPIPE_SZ


def read_all(fd):
    os.set_blocking(fd, False)
    data = bytearray()
    while True:
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            return bytes(data)
        if not chunk:
            return bytes(data)
        data += chunk


def test_partial_write_is_buffered_with_write_interest_until_drained(pipe):
    r, w = pipe
    reactor = Reactor()
    out = OutputStream(reactor, w)
    assert out.pollable and not os.get_blocking(w)
    payload = bytes(range(256)) * (pipe_size(w) // 128)   # twice what the pipe holds
    out.write(payload)
    assert out.get_buffer_size() == len(payload) - pipe_size(w)
    assert reactor.selector.get_key(w).events == EVENT_WRITE
    out.write(b"tail")                                 # appended, nothing written out of order
    received = bytearray()

    def drained():
        received.extend(read_all(r))
        return out.get_buffer_size() == 0
    run_reactor_until(reactor, drained)
    received += read_all(r)
    assert bytes(received) == payload + b"tail"
    assert reactor.selector.get_map().get(w) is None                # interest off once empty
    reactor.close()


def test_a_pipe_is_grown_so_a_bursty_reader_finds_more_waiting(pipe):
    r, w = pipe
    assert pipe_size(w) == 65536
    reactor = Reactor()
    OutputStream(reactor, w)
    assert pipe_size(w) == 65536                       # only when asked
    OutputStream(reactor, w, pipe_bytes=256 * 1024)
    assert pipe_size(w) == 256 * 1024
    reactor.close()


def test_a_full_fd_is_eagain_not_a_block(pipe):
    r, w = pipe
    reactor = Reactor()
    out = OutputStream(reactor, w)
    try:
        while True:
            os.write(w, b"x" * 65536)
    except BlockingIOError:
        pass
    out.write(b"waits")                                # returns at once
    assert out.get_buffer_size() == 5 and not out.closed
    reactor.close()


def test_water_marks_fire_strictly_above_high_and_at_low(pipe):
    r, w = pipe
    reactor = Reactor()
    out = OutputStream(reactor, w)
    events = []
    size = pipe_size(w)
    out.add_water_marks(100, 10, lambda: events.append("high"), lambda: events.append("low"))
    out.add_water_marks(1000, 10, lambda: events.append("HIGH"), lambda: events.append("LOW"))
    out.write(b"a" * size)                             # fills the pipe, buffers nothing
    out.write(b"b" * 100)
    assert events == []                                # exactly at the mark: not above it
    out.write(b"c")
    assert events == ["high"]
    out.write(b"d" * 1000)
    assert events == ["high", "HIGH"]
    os.read(r, size)                                   # room for everything buffered
    run_reactor_until(reactor, lambda: out.get_buffer_size() == 0)
    assert events == ["high", "HIGH", "low", "LOW"]
    reactor.close()


def test_when_drained_runs_from_the_ready_queue_after_the_last_byte(pipe):
    r, w = pipe
    reactor = Reactor()
    out = OutputStream(reactor, w)
    done = []
    out.when_drained(lambda: done.append("empty"))
    assert done == []                                  # never inline
    reactor.run_once()
    assert done == ["empty"]
    out.write(b"x" * (pipe_size(w) + 10))
    out.when_drained(lambda: done.append("later"))
    reactor.call_later(0.01, lambda: None)
    reactor.run_once()
    assert done == ["empty"]
    read_all(r)
    run_reactor_until(reactor, lambda: len(done) == 2)
    assert done == ["empty", "later"]
    reactor.close()


def test_a_closed_reader_loses_the_stream_once_epipe(pipe):
    r, w = pipe
    reactor = Reactor()
    out = OutputStream(reactor, w)
    lost, events = [], []
    out.when_lost(lambda exc: lost.append(exc.errno))
    out.add_water_marks(10, 0, lambda: events.append("high"), lambda: events.append("low"))
    out.write(b"x" * (pipe_size(w) + 100))
    assert events == ["high"]
    os.close(r)
    run_reactor_until(reactor, lambda: lost)
    assert lost == [errno.EPIPE] and out.closed and out.lost.errno == errno.EPIPE
    assert events == ["high", "low"]                   # nothing waits on a lost stream
    assert out.get_buffer_size() == 0 and reactor.selector.get_map().get(w) is None
    out.write(b"ignored")
    reactor.run_once()
    assert lost == [errno.EPIPE]
    assert out.close() == 0
    reactor.close()


def test_close_never_waits_counts_what_is_left_and_gives_the_flags_back(pipe):
    r, w = pipe
    assert os.get_blocking(w)
    reactor = Reactor()
    out = OutputStream(reactor, w)
    out.write(b"y" * (pipe_size(w) + 1234))
    assert out.close() == 1234
    assert os.get_blocking(w) and reactor.selector.get_map().get(w) is None
    assert out.close() == 0                            # idempotent
    out.write(b"more")
    assert out.get_buffer_size() == 0
    reactor.close()


def test_release_and_reclaim_the_blocking_flag(pipe):
    r, w = pipe
    reactor = Reactor()
    out = OutputStream(reactor, w)
    out.release()
    assert os.get_blocking(w)
    out.reclaim()
    assert not os.get_blocking(w)
    out.close()
    assert os.get_blocking(w)
    reactor.close()


def test_socketpair_partial_writes_keep_order():
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    reactor = Reactor()
    out = OutputStream(reactor, a.fileno())
    payload = os.urandom(1 << 20)
    for i in range(0, len(payload), 1000):
        out.write(payload[i:i + 1000])
    assert out.get_buffer_size() > 0
    got = bytearray()
    b.setblocking(False)

    def more():
        try:
            got.extend(b.recv(1 << 20))
        except BlockingIOError:
            pass
        return len(got) == len(payload)
    run_reactor_until(reactor, more)
    assert bytes(got) == payload
    out.close()
    reactor.close()
    a.close()
    b.close()


def test_a_regular_file_is_written_without_polling(tmp_path):
    path = tmp_path / "out.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    reactor = Reactor(selectors.EpollSelector())        # epoll refuses regular files (EPERM)
    out = OutputStream(reactor, fd)
    assert not out.pollable
    out.write(b"line 1\n")
    out.write(b"line 2\n")
    assert out.get_buffer_size() == 0
    assert out.close() == 0
    os.close(fd)
    assert path.read_bytes() == b"line 1\nline 2\n"
    reactor.close()


class RefusingSelector(selectors.DefaultSelector):
    """A selector that, like kqueue with some fds, will not watch one of them."""

    def __init__(self, refused):
        super().__init__()
        self.refused = refused

    def register(self, fileobj, events, data=None):
        if fileobj == self.refused:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        return super().register(fileobj, events, data)


def test_an_fd_that_cannot_be_polled_but_is_full_is_retried_from_a_timer(pipe):
    r, w = pipe
    reactor = Reactor(RefusingSelector(w))
    out = OutputStream(reactor, w)
    assert not out.pollable
    payload = b"z" * (pipe_size(w) * 2)
    out.write(payload)
    assert out.get_buffer_size() == pipe_size(w)
    got = bytearray()

    def more():
        got.extend(read_all(r))
        return len(got) == len(payload)
    run_reactor_until(reactor, more)
    assert out.get_buffer_size() == 0
    reactor.close()


def test_a_terminal_that_hung_up_is_eio_and_lost():
    master, slave = pty.openpty()
    reactor = Reactor()
    out = OutputStream(reactor, slave)
    lost = []
    out.when_lost(lambda exc: lost.append(exc.errno))
    os.close(master)
    out.write(b"anyone there?\n")
    run_reactor_until(reactor, lambda: lost)
    assert lost == [errno.EIO] and out.closed
    out.close()
    os.close(slave)
    reactor.close()

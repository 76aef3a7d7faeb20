"""chat.py at a real terminal (a pty): paste, Ctrl-C on a pending connect, Ctrl-D with
--stay, TERM=dumb, and the time each key takes on a very long line."""

from __future__ import annotations

import re
import socket
import statistics
import time

import pytest

from helpers import BlackHole, figure, recv_line
from test_terminal import PtyChat, term  # noqa: F401 - the fixture

REDRAWN = re.compile(rb"\x1b\[K> [^\r]*\r\x1b\[\d+C")


def test_bracketed_paste_is_text_until_enter(term):
    t = term()
    t.wait_for(rb"\x1b\[\?2004h")                 # the terminal is asked to mark pastes
    with socket.create_connection(("127.0.0.1", t.port), timeout=5) as raw:
        raw.sendall(b"x\n")
        t.wait_for(rb"peer 1 ")
        t.type(b"send 1 \x1b[200~one\r\nsend 1 two\texit\r\x1b[201~")
        t.wait_for(rb"> send 1 one send 1 two exit ")
        mark = len(t.screen)
        t.type(b"!\r")
        buf = bytearray()
        assert recv_line(raw, buf=buf) == b"one send 1 two exit !"
        t.wait_for(rb"sent to peer 1", start=mark)
        t.type(b"\x0c")                                # Ctrl-L: cleared, prompt at the top
        t.wait_for(rb"\x1b\[H\x1b\[2J\r\x1b\[K> ")
        t.type(b"exit\r")
        assert t.wait_exit() == 0
    assert t.screen.rstrip(b"\r\n").endswith(b"\x1b[?2004l")   # and told to stop on the way out
    assert t.modes_now() == t.modes_before


def test_ctrl_c_cancels_a_pending_connect_and_the_lines_behind_it_run(term):
    hole = BlackHole()
    try:
        t = term("--connect-timeout", "60")
        t.type(f"connect 127.0.0.1 {hole.port}\r".encode())
        t.wait_for(rf"connecting to 127\.0\.0\.1:{hole.port} as peer 1 \.\.\. \(Ctrl-C to cancel\)"
                   .encode())
        t.type(b"myport\r")                            # only reports: answers at once
        t.wait_for(rf"listening port: {t.port}".encode())
        t.type(b"name\r")                              # typed behind the connect: waits
        t.type(b"li")                                  # half typed when Ctrl-C comes
        t.wait_for(rb"> li")
        mark = len(t.screen)
        assert b"your name" not in t.screen and b"you have no name" not in t.screen
        t.type(b"\x03")
        t.wait_for(rf"cancelled the connection to 127\.0\.0\.1:{hole.port}".encode(),
                   start=mark)
        t.wait_for(rb"your name: |you have no name", start=mark)
        t.wait_for(rb"\x1b\[K> li\r", start=mark)     # the half-typed line is still there
        t.type(b"st\r")
        t.wait_for(rb"no connections", start=mark)
        assert t.proc.poll() is None                   # Ctrl-C did not end the program
        assert b"could not connect" not in t.screen and b"error" not in t.screen[mark:]
        t.type(b"\x03")                                # nothing pending: Ctrl-C exits
        assert t.wait_exit() == 130
    finally:
        hole.close()


def test_ctrl_d_at_a_terminal_exits_even_with_stay(term):
    t = term("--stay")
    t.wait_for(rb"> ")
    t.type(b"\x04")
    assert t.wait_exit() == 0
    assert b"still running" not in t.screen
    assert t.modes_now() == t.modes_before


def test_term_dumb_or_unset_runs_as_with_a_pipe(term):
    for how in ({"env": {"TERM": "dumb"}}, {"unset": ["TERM"]}):
        t = term(**how)
        assert t.modes_now() == t.modes_before        # the terminal is left as it was
        with socket.create_connection(("127.0.0.1", t.port), timeout=5) as raw:
            raw.sendall(b"hello\n")
            t.wait_for(rb"message from peer 1 \(127\.0\.0\.1:\d+\): hello\r\n")
            t.type(b"myport\n")
            t.wait_for(rf"listening port: {t.port}\r\n".encode())
            t.type(b"send 1 back\n")
            assert recv_line(raw) == b"back"
        t.type(b"exit\n")
        assert t.wait_exit() == 0
        assert b"\x1b" not in t.screen, (how, t.screen)
        assert b"> " not in t.screen                   # no prompt either


def _keys_on_a_line_of_100000_wide_characters(t) -> list:
    """Paste 100,000 wide characters, then press Home, End, Left, Right and Backspace six
    times each, waiting for each redraw; check that the line holds them all; exit.
    Returns the seconds from each key to its redraw."""
    t.wait_for(rb"> ")
    t.write_all(b"\x1b[200~" + "日".encode() * 100_000 + b"\x1b[201~")
    t.type(b"Z")
    t.wait_for(rb"\xe6\x97\xa5Z\r\x1b\[\d+C")        # ...日Z: the whole paste is in
    keys = [b"\x1b[H", b"\x1b[F", b"\x1b[D", b"\x1b[C", b"\x7f"] * 6
    latencies = []
    for key in keys:
        mark = len(t.screen)
        started = time.perf_counter()
        t.type(key)
        t.wait_for(REDRAWN, start=mark)
        latencies.append(time.perf_counter() - started)
    # The line really holds them all: 100,000 + Z - 6 Backspaces.
    with socket.create_connection(("127.0.0.1", t.port), timeout=5) as raw:
        raw.sendall(b"x\n")
        t.wait_for(rb"peer 1 ")
        t.type(b"\x01send 1 \r")
        t.wait_for(rb"message is 99995 characters long")
    t.type(b"\x03")
    assert t.wait_exit() == 130
    return latencies


def test_every_key_is_answered_on_a_line_of_100000_wide_characters(term):
    latencies = _keys_on_a_line_of_100000_wide_characters(term())
    assert len(latencies) == 30                       # each key was redrawn, in turn


@pytest.mark.slow   # a speed claim: wall-clock latency per key on the machine at hand
def test_each_key_answers_quickly_on_a_line_of_100000_wide_characters(term):
    latencies = _keys_on_a_line_of_100000_wide_characters(term())
    median, worst = statistics.median(latencies), max(latencies)
    figure("key latency on a 100,000-character wide line, median (ms)", round(median * 1e3, 2))
    figure("key latency on a 100,000-character wide line, max (ms)", round(worst * 1e3, 2))
    # About a millisecond here; anything not linear in the line would take seconds.
    assert median < 0.1 and worst < 0.5, latencies

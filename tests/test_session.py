"""How the program ends, in-process on a fake clock: every way out, the grace period, a
second signal. (The subprocess tests show the same through real signals, once each.)"""

from __future__ import annotations

import pytest

from commands.session import EXIT_FAILURE, EXIT_OK, Session, signal_status
from reactor.timers import TimerQueue

SIGINT, SIGTERM, SIGHUP = 2, 15, 1


class Clock:
    def __init__(self):
        self.now = 0.0
        self.timers = TimerQueue(lambda: self.now)

    def advance(self, seconds):
        """Move time on and run every timer that comes due on the way, in order."""
        end = self.now + seconds
        while True:
            delay = self.timers.maybe_next_delay()
            if delay is None or self.now + delay > end:
                break
            self.now += delay
            for handle in self.timers.pop_due():
                if not handle.cancelled:      # as the reactor: one may cancel another
                    handle.callback(*handle.args)
        self.now = end


class Node:
    """Peers that take as long as the test says to say goodbye."""

    def __init__(self, peers=2):
        self.peers = peers
        self.done = None

    def shutdown(self, done):
        self.done = done
        return self.peers


class Console:
    def __init__(self):
        self.lines = []
        self.output_closed = False
        self.flushed = None

    def info(self, text):
        self.lines.append(text)

    def when_flushed(self, callback):
        self.flushed = callback


@pytest.fixture
def world():
    clock, node, console = Clock(), Node(), Console()
    stops = []
    session = Session(node, console, lambda: stops.append(clock.now), stay=False,
                      call_later=clock.timers.call_later, grace_s=2.0)
    exiting = []
    session.when_exiting(lambda: exiting.append(clock.now))
    return clock, node, console, session, stops, exiting


def test_exit_waits_for_the_peers_and_stdout_then_stops_at_once(world):
    clock, node, console, session, stops, exiting = world
    session.shutdown()
    assert exiting == [0.0] and console.lines == ["exiting: closing 2 connections"]
    clock.advance(0.5)
    node.done()                   # every peer took its goodbye
    assert stops == []            # ... and stdout must still take ours
    console.flushed()
    assert stops == [0.5] and session.status == EXIT_OK


def test_the_grace_period_ends_it_whatever_peers_or_stdout_do(world):
    clock, node, console, session, stops, exiting = world
    session.shutdown(signal_status(SIGTERM))
    clock.advance(1.999)
    assert stops == []
    clock.advance(0.001)
    assert stops == [2.0] and session.status == 143


def test_a_second_signal_stops_at_once_and_keeps_the_first_status(world):
    clock, node, console, session, stops, exiting = world
    session.shutdown(signal_status(SIGINT))
    clock.advance(0.1)
    session.shutdown(signal_status(SIGINT))
    assert stops == [0.1] and session.status == 130 and exiting == [0.0]


def test_a_signal_with_the_end_of_input_gives_the_signals_status_and_the_same_grace(world):
    clock, node, console, session, stops, exiting = world
    session.end_of_input()                      # a closed terminal: EOF ...
    session.shutdown(signal_status(SIGHUP))     # ... and SIGHUP together
    assert stops == [] and session.status == 129 and exiting == [0.0]
    clock.advance(2.0)
    assert stops == [2.0]


def test_stdout_lost_ends_quietly_with_status_1():
    clock, node, console = Clock(), Node(peers=0), Console()
    stops = []
    session = Session(node, console, lambda: stops.append(clock.now), stay=False,
                      call_later=clock.timers.call_later, grace_s=0.5)
    console.output_closed = True
    session.output_lost()
    assert console.lines == [] and session.status == EXIT_FAILURE
    clock.advance(0.5)
    assert stops == [0.5]


def test_stay_keeps_running_after_the_end_of_input_until_a_signal():
    clock, node, console = Clock(), Node(), Console()
    stops = []
    session = Session(node, console, lambda: stops.append(clock.now), stay=True,
                      call_later=clock.timers.call_later, grace_s=2.0)
    session.end_of_input()
    clock.advance(3600)
    assert stops == [] and not session.exiting
    assert console.lines == ["end of input; still running because of --stay "
                             "(stop with Ctrl-C or SIGTERM)"]
    session.shutdown(signal_status(SIGTERM))
    clock.advance(2.0)
    assert stops == [3602.0] and session.status == 143


def test_key_input_hands_each_editor_event_to_its_place():
    """At a terminal: Enter, Tab Tab, Ctrl-L, Ctrl-C and Ctrl-D, each where it belongs."""
    from commands.session import KeyInput
    from commands.terminal.lineedit import LineEditor
    did = []

    class Recorder:
        def __getattr__(self, name):
            return lambda *args: did.append((name, *args))

    recorder = Recorder()
    editor = LineEditor(lambda before: ["myip", "myport"])
    keys = KeyInput(editor, recorder, recorder, recorder,
                    interrupt=lambda: did.append(("interrupt",)))
    keys.data_received(b"my\t\t\x15myport\r\x0c\x03\x04")
    assert did == [("info", "myip  myport"),
                   ("flush",), ("commit_line", "myport"), ("submit", ["myport"]),
                   ("flush",), ("clear_screen",),
                   ("interrupt",),
                   ("end_of_input",),
                   ("refresh",)]

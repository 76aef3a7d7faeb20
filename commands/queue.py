"""The command queue: input lines run one at a time, in order.

A command that finishes later (a ``connect`` in flight, a ``send`` waiting
for a slow peer to drain) *holds* the queue; the lines behind it wait while
the loop keeps serving every peer. (A line at the head of the queue that only
reports, ``help``, ``myip``, ``myport``, ``myid``, runs at once all the same:
it neither depends on nor changes a connection.) That is what makes a piped script
``connect ...`` / ``send 1 hi`` / ``exit`` deterministic.

At most ``LINES_PER_TURN`` lines run before the runner gives the loop a
turn (its budget is refilled by a run scheduled for the next turn), so a long
script shares the loop fairly with the peers. The queue is bounded: above
``MAX_QUEUED_LINES`` the runner asks for input to pause (a script of 50,000 sends is read as fast as it is sent, not into
memory), and below ``RESUME_QUEUED_LINES`` asks for it again.

:meth:`CommandRunner.pause` stops running lines without dropping any (the
program calls it while far too much output is waiting for stdout); they
queue up, and the bound above then pauses input too.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Callable

from . import words
from .base import Context, NodeAPI

if TYPE_CHECKING:
    from .console import Console
    from .registry import CommandRegistry
from .sanitize import maybe_invalid_byte

MAX_QUEUED_LINES = 1000
RESUME_QUEUED_LINES = 100
LINES_PER_TURN = 64      # then let the loop serve the peers before going on

_END = object()   # marks the end of input in the queue


class CommandRunner:
    def __init__(self, registry: CommandRegistry, defer: Callable[[Callable[[], None]], None],
                 on_end_of_input: Callable[[], None], node: NodeAPI, console: Console,
                 request_exit: Callable[[], None]) -> None:
        """The runner owns the commands' context: the context hands out the runner's
        own ``hold``, so building it here breaks what would be a cycle."""
        self._registry = registry
        self._defer = defer
        self._on_end_of_input = on_end_of_input
        self.set_input_flow(lambda: None, lambda: None)
        self._queue: collections.deque = collections.deque()
        self._held = False
        self._paused = 0
        self._input_paused = False
        self._stopped = False
        self._scheduled = False
        self._running = False
        self._budget = LINES_PER_TURN     # lines to run before the loop gets a turn back
        self.context = Context(node=node, console=console, registry=registry, hold=self.hold,
                               request_exit=request_exit)

    def set_input_flow(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        """What to call when the queue is too long to read more, and when it is not."""
        self._pause_input = pause
        self._resume_input = resume

    def hold(self) -> Callable[[], None]:
        """Hold the queue until the returned function is called (once)."""
        self._held = True
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._held = False
                if not self._running:
                    # Released from a loop callback of its own (the node calls every
                    # ``done`` later, never inside the command): the queue goes on at
                    # once, within its budget, so a script's sends do not wait a turn
                    # each. Released while running (a command that gave up at once):
                    # the running loop goes on.
                    self._run()
        return release

    def pause(self) -> None:
        """Run nothing until :meth:`resume`; lines keep queueing.

        Pauses nest (stdout and stderr may each be behind): the queue runs
        again once every pause has been resumed.
        """
        self._paused += 1

    def resume(self) -> None:
        if self._paused:
            self._paused -= 1
            if not self._paused:
                self._schedule()

    def stop(self) -> None:
        """Run nothing more (the program is exiting)."""
        self._stopped = True
        self._queue.clear()

    def submit(self, lines) -> None:
        """Queue input lines (``str``; anything else is a line that was too long)."""
        if self._stopped:
            return
        self._queue.extend(lines)
        if not self._input_paused and len(self._queue) > MAX_QUEUED_LINES:
            self._input_paused = True
            self._pause_input()
        self._run()

    def end_of_input(self) -> None:
        self.submit([_END])

    def _schedule(self) -> None:
        """Run on a later turn, with a new budget (never re-entrantly)."""
        if not self._scheduled:
            self._scheduled = True
            self._defer(self._scheduled_run)

    def _scheduled_run(self) -> None:
        self._scheduled = False
        self._budget = LINES_PER_TURN
        self._run()

    def _dispatch(self, line: str, ctx: Context) -> None:
        try:
            self._registry.dispatch(line, ctx)
        except Exception as exc:  # noqa: BLE001 - a bug must not wedge the queue
            self._held = False
            ctx.console.error(words.internal_error_running(line.split()[0], exc))

    def _run(self) -> None:
        if self._running:
            return
        self._running = True
        try:
            self._run_lines()
        finally:
            self._running = False

    def _may_jump(self, item) -> bool:
        """May the line at the head of a held queue run now? Only one that reports
        and neither depends on nor changes a connection (``myport`` while a slow name
        is looked up): the lines behind a ``connect`` still wait for it, in order."""
        if not isinstance(item, str):
            return False
        words_ = item.split(None, 1)
        command = self._registry.get(words_[0]) if words_ else None
        return command is not None and command.immediate

    def _run_lines(self) -> None:
        ctx = self.context
        while self._queue and not self._paused and not self._stopped \
                and (not self._held or self._may_jump(self._queue[0])):
            if not self._budget:
                self._schedule()   # a long script must not starve the peers
                break
            self._budget -= 1
            item = self._queue.popleft()
            if item is _END:
                self._on_end_of_input()
            elif not isinstance(item, str):
                ctx.console.error(words.input_line_too_long(item.nbytes))
            else:
                bad = maybe_invalid_byte(item)
                if bad is not None:
                    ctx.console.error(words.invalid_utf8(bad))
                else:
                    self._dispatch(item, ctx)
        if self._input_paused and len(self._queue) <= RESUME_QUEUED_LINES:
            self._input_paused = False
            self._resume_input()

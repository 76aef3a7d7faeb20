"""Ctrl-Z and ``fg``: stop for real, with the terminal given back as we found it.

While chat.py runs at a terminal, Ctrl-Z is a key (the terminal's signal
keys are off) and ``kill -TSTP`` arrives as a signal the loop handles. Both
land in :meth:`JobControl.suspend`: hide the input line, give stdout and
stderr their original (blocking) flags and the terminal its original modes,
then stop the process with SIGSTOP. When something continues us (``fg``,
``bg``, ``kill -CONT``) the same call returns and :meth:`resume` takes the
terminal again and redraws the prompt with the half-typed line; the SIGCONT
handler calls :meth:`resume` too, for stops we did not make ourselves.

SIGSTOP rather than SIGTSTP: the kernel discards SIGTSTP for a process
group with no parent in the session (an orphaned group), and then Ctrl-Z
would do nothing at all. The cost: such a group has nobody to ``fg`` it,
only ``kill -CONT``.
"""

from __future__ import annotations

import os
import signal
from typing import Callable, Iterable


def _stop_this_process() -> None:
    os.kill(os.getpid(), signal.SIGSTOP)   # returns once we are continued


class JobControl:
    def __init__(self, terminal, screen, outputs: Iterable,
                 stop: Callable[[], None] = _stop_this_process) -> None:
        self._terminal = terminal     # None when stdin is not a terminal
        self._screen = screen         # None likewise
        self._outputs = tuple(outputs)   # streams with release() / reclaim()
        self._stop = stop

    def suspend(self) -> None:
        if self._screen is not None:
            self._screen.before_output()   # leave no prompt behind on the shell's screen
        for output in self._outputs:
            output.release()
        if self._terminal is not None:
            self._terminal.suspend()
        self._stop()
        self.resume()

    def resume(self) -> None:
        for output in self._outputs:
            output.reclaim()
        if self._terminal is not None:
            self._terminal.resume()
        if self._screen is not None:
            self._screen.refresh()

"""How input reaches the command queue, and how the program ends.

* :class:`LineInput` feeds lines from a pipe or a file (through a line codec).
* :class:`KeyInput` feeds keys from a terminal (through the line editor and
  its screen), so the input line survives incoming messages; there, Ctrl-C
  while a ``connect`` is pending cancels that connect
  (:func:`cancel_pending_connect`).
* :class:`Session` ends the program the same graceful way whatever asks:
  ``exit``, the end of input, Ctrl-C, SIGTERM and the other stopping
  signals, or a closed stdout.

Neither knows sockets or terminals: the codec, editor, screen and node come
in from ``chat.py`` and are used through their methods only (and the
editor's events, which are plain data).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from . import words
from .base import NodeAPI
from .terminal.lineedit import Choices, ClearScreen, EndOfInput, Interrupt, LineEntered

if TYPE_CHECKING:
    from .console import Console

EXIT_OK, EXIT_FAILURE = 0, 1
EXIT_UNDELIVERED = 3            # it ended well, but messages of ours were not acknowledged
SIGNAL_EXIT_BASE = 128          # a signal's exit status is 128 + its number, as shells report
EXIT_SIGINT = SIGNAL_EXIT_BASE + 2
CTRL_Z = b"\x1a"


def signal_status(signum: int) -> int:
    return SIGNAL_EXIT_BASE + signum


class Session:
    """The one way out: goodbye to every peer, flush, stop; never longer than ``grace_s``
    (how long exit waits for peers and for stdout to take our words)."""

    def __init__(self, node: NodeAPI, console: Console, stop_loop: Callable[[], None], stay: bool,
                 call_later: Callable[..., object], grace_s: float) -> None:
        self._node = node
        self._console = console
        self._stop_loop = stop_loop
        self._stay = stay
        self._call_later = call_later
        self._grace_s = grace_s
        self.status = EXIT_OK
        self.exiting = False
        self._passive = False   # the exit began because input or output ended
        self._on_exit: list[Callable[[], None]] = []

    def when_exiting(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` first thing when the exit begins (stop the queue, stop
        reading stdin). Registered, not passed in: those are built after the session,
        because they need its ``shutdown`` and ``end_of_input``."""
        self._on_exit.append(callback)

    def shutdown(self, status: int = EXIT_OK) -> None:
        """``exit``, Ctrl-C or a signal: flush, say goodbye to every peer, then stop."""
        self._begin(status, passive=False)

    def end_of_input(self) -> None:
        if self._stay:
            self._console.info(words.STAYING)
        else:
            self._begin(EXIT_OK, passive=True)

    def output_lost(self, exc: BaseException | None = None) -> None:
        """stdout went away (a closed pipe, a hung-up terminal): end quietly."""
        self._begin(EXIT_FAILURE, passive=True)

    def _begin(self, status: int, passive: bool) -> None:
        if self.exiting:
            if status > SIGNAL_EXIT_BASE:
                if self._passive and self.status <= SIGNAL_EXIT_BASE:
                    # The signal explains the end of input (a closed terminal sends
                    # SIGHUP and EOF together): its status, the same grace period.
                    self.status = status
                else:
                    self._stop_loop()   # a second signal: stop waiting for peers
            return
        self.exiting = True
        self.status = status
        self._passive = passive
        for callback in self._on_exit:
            callback()
        self._call_later(self._grace_s, self._stop_loop)   # whatever peers or stdout do
        count = self._node.shutdown(done=self._peers_done)
        if not self._console.output_closed:
            self._console.info(words.exiting(count))

    def _peers_done(self, undelivered: int = 0) -> None:
        if undelivered and self.status == EXIT_OK:
            self.status = EXIT_UNDELIVERED
        self._console.when_flushed(self._stop_loop)


class LineInput:
    """stdin that is a pipe, a file or /dev/null: bytes -> lines -> the queue."""

    def __init__(self, codec, runner) -> None:
        self._codec = codec
        self._runner = runner

    def data_received(self, data: bytes) -> None:
        self._runner.submit(self._codec.feed(data))

    def eof_received(self) -> None:
        last = self._codec.maybe_take_partial()    # a last line without a newline
        if last is not None:
            self._runner.submit([last])
        self._runner.end_of_input()


def cancel_pending_connect(node: NodeAPI, console: Console) -> bool:
    """Ctrl-C at a terminal while a connect is in flight: give that one up, nothing more.

    Returns False when there was none (Ctrl-C then means what it always does).
    """
    address = node.cancel_connect()
    if address is None:
        return False
    console.connect_cancelled(*address)
    return True


class KeyInput:
    """stdin that is a terminal: keys -> the line editor -> the queue.

    Ctrl-Z reaches us as a key (the terminal's signal keys are off while we
    own the line) and is handed to ``suspend`` before the editor sees it.
    """

    def __init__(self, editor, screen, console, runner,
                 interrupt: Callable[[], None],
                 suspend: Callable[[], None] = lambda: None) -> None:
        self._editor = editor
        self._screen = screen
        self._console = console
        self._runner = runner
        self._interrupt = interrupt
        self._suspend = suspend

    def data_received(self, data: bytes) -> None:
        while True:
            keys, ctrl_z, data = data.partition(CTRL_Z)
            self._keys(keys)
            if not ctrl_z:
                break
            self._suspend()
        self._screen.refresh()

    def _keys(self, data: bytes) -> None:
        for event in self._editor.feed(data):
            if isinstance(event, LineEntered):
                self._console.flush()             # what came before stays above it
                self._screen.commit_line(event.text)
                self._runner.submit([event.text])
            elif isinstance(event, EndOfInput):
                self._runner.end_of_input()
            elif isinstance(event, Interrupt):
                self._interrupt()
            elif isinstance(event, Choices):
                self._console.info("  ".join(event.options))
            elif isinstance(event, ClearScreen):
                self._console.flush()
                self._screen.clear_screen()

    def eof_received(self) -> None:
        self._runner.end_of_input()

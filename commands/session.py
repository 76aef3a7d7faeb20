"""How input reaches the command queue, and how the program ends.

* :class:`LineInput` feeds lines from a pipe or a file (through a line codec).
* :class:`KeyInput` feeds keys from a terminal (through the line editor and
  its screen), so the input line survives incoming messages; there, Ctrl-C
  while a ``connect`` is pending cancels that connect
  (:func:`cancel_pending_connect`).
* :class:`Session` ends the program the same graceful way whatever asks:
  ``exit``, the end of input, Ctrl-C, SIGTERM, or a closed stdout.

Neither knows sockets or terminals: the codec, editor, screen and node come
in from ``chat.py`` and are used through their methods only.
"""

from __future__ import annotations

from typing import Callable

from .base import plural

EXIT_OK, EXIT_FAILURE = 0, 1
EXIT_SIGINT, EXIT_SIGTERM = 128 + 2, 128 + 15


class Session:
    def __init__(self, node, console, stop_loop: Callable[[], None], stay: bool) -> None:
        self._node = node
        self._console = console
        self._stop_loop = stop_loop
        self._stay = stay
        self.status = EXIT_OK
        self.exiting = False
        self.runner = None      # set once built (they need each other)
        self.stdin = None

    def shutdown(self, status: int = EXIT_OK) -> None:
        """Flush what is queued, say goodbye to every peer, then stop the loop."""
        if self.exiting:
            if status in (EXIT_SIGINT, EXIT_SIGTERM):
                self._stop_loop()   # a second Ctrl-C or SIGTERM: stop waiting for peers
            return
        self.exiting = True
        self.status = status
        self.runner.stop()
        self.stdin.close()
        count = self._node.shutdown(done=self._stop_loop)
        if not self._console.output_closed:
            self._console.info(f"exiting: closing {plural(count, 'connection')}" if count
                              else "exiting")

    def end_of_input(self) -> None:
        if self._stay:
            self._console.info("end of input; still running because of --stay "
                               "(stop with Ctrl-C or SIGTERM)")
        else:
            self.shutdown(EXIT_OK)


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


def cancel_pending_connect(node, console) -> bool:
    """Ctrl-C at a terminal while a connect is in flight: give that one up, nothing more.

    Returns False when there was none (Ctrl-C then means what it always does).
    """
    address = node.cancel_connect()
    if address is None:
        return False
    console.connect_cancelled(*address)
    return True


class KeyInput:
    """stdin that is a terminal: keys -> the line editor -> the queue."""

    def __init__(self, editor, screen, console, runner,
                 interrupt: Callable[[], None]) -> None:
        self._editor = editor
        self._screen = screen
        self._console = console
        self._runner = runner
        self._interrupt = interrupt

    def data_received(self, data: bytes) -> None:
        for event in self._editor.feed(data):
            kind = event[0]
            if kind == "line":
                self._console.flush()             # what came before stays above it
                self._screen.commit_line(event[1])
                self._runner.submit([event[1]])
            elif kind == "eof":
                self._runner.end_of_input()
            elif kind == "interrupt":
                self._interrupt()
            elif kind == "choices":
                self._console.info("  ".join(event[1]))
            elif kind == "clear-screen":
                self._console.flush()
                self._screen.clear_screen()
        self._screen.refresh()

    def eof_received(self) -> None:
        self._runner.end_of_input()

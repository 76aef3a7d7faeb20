"""The console: the one place that writes for the user.

Every line the user sees goes through here: command output, errors, and the
events the node reports (this class is the node's observer). Peer text is
passed through :func:`sanitize` on every path (messages, notices, errors
that echo a peer's words, the ``list`` table), so nothing a peer sends can
steer the terminal.

Output is collected during a loop turn and written with one ``write`` per
stream at the end of it (``flush``, an after-turn hook), so a flood of
messages costs one system call per turn, not one per line. Events go to
stdout and errors to stderr, one line each, so logs stay greppable.

The console writes into two *sinks* (stdout's and stderr's; the same object
when both go to one file, so their order is kept). A sink never blocks: it
buffers what its reader has not taken yet (``reactor.output.OutputStream``),
and the program decides what to hold back while it is full. A sink has
``write(bytes)``, ``closed``, ``lost`` (the error that closed it, if one did),
``when_drained(callback)`` and ``close() -> bytes left unwritten``.

When stdout is closed (``chat.py | head -1``) the sink is lost and the
console writes nothing more to it; the program ends quietly. At the very
end, :meth:`close` says in one line on stderr how much output could not be
written because nothing was reading stdout.
"""

from __future__ import annotations

import errno
import os
from typing import Callable, Iterable

from .sanitize import MAX_SHOWN_CHARS, all_safe, maybe_plain_ascii, sanitize, shorten

STDOUT, STDERR = 1, 2
# A stdout lost to these is simply gone (a closed pipe, a closed terminal): no words.
QUIET_LOSSES = (errno.EPIPE, errno.EIO, errno.EBADF, errno.ECONNRESET)
# SGR colours for our own labels.
MESSAGE, SENT, EVENT, ERROR = "1;36", "32", "33", "1;31"


def _peer(info) -> str:
    return f"peer {info.id} ({info.host}:{info.port})"


class Console:
    def __init__(self, stdout, stderr=None, encoding: str = "utf-8",
                 color: bool = False) -> None:
        self._out = stdout
        self._err = stderr if stderr is not None else stdout
        self._encoding = encoding
        self.color = color
        self._pending: list[tuple[int, bytes]] = []   # (stream, encoded line)
        # An interactive line editor plugs in here: it hides the input line
        # before output (before_output) and draws it again after (after_output).
        self.screen = None

    @property
    def output_closed(self) -> bool:
        return self._out.closed

    # -- the sink ------------------------------------------------------------------------

    def info(self, text: str) -> None:
        """One line of normal output (stdout)."""
        self._pending.append((STDOUT, self._encode(text)))

    def error(self, text: str) -> None:
        """One line saying what went wrong and what to do instead (stderr)."""
        self._pending.append((STDERR, self._encode(f"{self._style('error:', ERROR)} {text}")))

    def _encode(self, text: str) -> bytes:
        # backslashreplace: a stdout that cannot show a character shows its escape.
        return text.encode(self._encoding, "backslashreplace")

    def _style(self, label: str, sgr: str) -> str:
        """Colour one of our own labels (never peer text) when colour is on."""
        return f"\x1b[{sgr}m{label}\x1b[0m" if self.color else label

    def write_raw(self, text: str) -> None:
        """Terminal control from the screen (prompt drawing), written at once."""
        self._emit(STDOUT, [self._encode(text)], newline=False)

    def lines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.info(line)

    def flush(self) -> None:
        """Write everything collected since the last flush, in order."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        screen = self.screen
        if screen is not None:
            screen.before_output()
        fd, chunk = pending[0][0], []
        for stream, text in pending:
            if stream != fd:
                self._emit(fd, chunk)
                fd, chunk = stream, []
            chunk.append(text)
        self._emit(fd, chunk)
        if screen is not None:
            screen.after_output()

    def _emit(self, stream: int, chunks: list[bytes], newline: bool = True) -> None:
        sink = self._out if stream == STDOUT else self._err
        if sink.closed:
            return
        if newline:
            chunks.append(b"")   # a final "\n" without copying all the data again
        sink.write(b"\n".join(chunks))

    def when_flushed(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once everything said so far has been written."""
        self.flush()
        if self._err is self._out:
            self._out.when_drained(callback)
        else:
            self._out.when_drained(lambda: self._err.when_drained(callback))

    def close(self) -> None:
        """The end: one last try to write, then one line on what was left over."""
        self.flush()
        left = self._out.close()
        lost = self._out.lost
        if self._err is not self._out:
            if left and lost is None:
                self._say_last(f"{left} bytes of output could not be written: "
                               f"stdout is not being read")
            elif lost is not None and lost.errno not in QUIET_LOSSES:
                self._say_last(f"could not write to stdout: "
                               f"{lost.strerror or os.strerror(lost.errno or 0)}")
        self._err.close()

    def _say_last(self, text: str) -> None:
        self._err.write(self._encode(f"{self._style('error:', ERROR)} {text}\n"))

    # -- words for what the node reports (the observer interface) ------------------------

    def listening(self, host: str, port: int) -> None:
        self.info(f'listening on {host}:{port}; type "help" for commands')

    def event(self, text: str) -> None:
        """A change in who we are connected to."""
        self.info(self._style(text, EVENT))

    def peer_connected(self, info) -> None:
        if info.direction == "outgoing":
            text = f"connected to {_peer(info)}"
            if not info.speaks_protocol:
                text += " (it is not chat.py: it gets your messages as plain lines)"
        else:
            text = f"{_peer(info)} connected to you"
            if not info.speaks_protocol:
                text += " (a plain TCP client, not chat.py; the port is its own)"
        self.event(text)

    def peer_lost(self, info, reason: str, detail: str) -> None:
        peer = _peer(info)
        if reason == "closed":
            self.event(f"{peer} closed the connection")
        elif reason == "left":
            self.event(f"{peer} left")
        elif reason == "timed out":
            self.event(f"dropped {peer}: it stopped answering ({detail})")
        elif reason == "stalled":
            self.event(f"dropped {peer}: it stopped reading ({detail})")
        else:
            self.event(f"lost the connection to {peer}: {detail or reason}")

    def messages_received(self, info, texts: list[str]) -> None:
        """Lines from one peer; the hot path of the program, so done in bulk."""
        prefix = self._style(f"message from {_peer(info)}:", MESSAGE) + " "
        if max(map(len, texts)) <= MAX_SHOWN_CHARS:
            body = prefix + ("\n" + prefix).join(texts)
            if not self.color:
                # Plain ASCII, the common case: checked and encoded once, in bulk.
                raw = maybe_plain_ascii(body)
                if raw is not None:
                    self._pending.append((STDOUT, raw))
                    return
            if all_safe(texts):
                self._pending.append((STDOUT, self._encode(body)))
                return
        for text in texts:
            self.info(prefix + shorten(sanitize(text)))

    def line_too_long(self, info, nbytes: int, limit: int) -> None:
        self.info(f"{_peer(info)} sent a line longer than {limit} bytes; it was discarded")

    def connect_failed(self, host: str, port: int, reason: str) -> None:
        self.error(f"could not connect to {host}:{port}: {sanitize(reason)}")

    def incoming_refused(self, address: str | None, count: int, limit: int) -> None:
        if address is not None:
            self.info(f"refused a connection from {address}: already at the limit of "
                      f"{limit} peers (see --max-peers)")
        else:
            self.info(f"refused {count} more connection(s) in the last second: "
                      f"still at the limit of {limit} peers")

    def accept_paused(self, reason: str, retry_s: float) -> None:
        self.info(f"cannot accept new connections for now ({reason}); "
                  f"trying again in {retry_s:g} s")

    # -- words for command results ---------------------------------------------------------

    def sent(self, info, text: str) -> None:
        self.info(f"{self._style(f'sent to {_peer(info)}:', SENT)} {text}")

    def terminated(self, info) -> None:
        self.event(f"closed the connection to {_peer(info)}")

    def peer_table(self, peers: list) -> None:
        if not peers:
            self.info('no connections; open one with "connect <ip> <port>"')
            return
        rows = [("id", "IP address", "port", "connection")]
        for p in peers:
            how = "you connected" if p.direction == "outgoing" else "it connected"
            if not p.speaks_protocol:
                how += ", not chat.py"
            rows.append((str(p.id), p.host, str(p.port), how))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for r in rows:
            self.info(f"{r[0]:>{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}")

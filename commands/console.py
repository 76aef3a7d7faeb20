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

With ``timestamps`` on, every event and message line starts with the local
time, ``[HH:MM:SS]``, formatted at most once a second (once per batch of
messages at worst).

When stdout is closed (``chat.py | head -1``) the console stops writing and
calls ``on_output_closed`` once, so the program can end quietly.
"""

from __future__ import annotations

import errno
import os
import select
import time
from typing import Callable, Iterable

from network.outcomes import Direction

from . import words
from .sanitize import MAX_SHOWN_CHARS, all_safe, maybe_plain_ascii, sanitize, shorten

STDOUT, STDERR = 1, 2
# SGR colours for our own labels.
MESSAGE, SENT, EVENT, ERROR = "1;36", "32", "33", "1;31"


class Console:
    def __init__(self, write: Callable[[int, bytes], int] = os.write,
                 encoding: str = "utf-8",
                 on_output_closed: Callable[[], None] | None = None,
                 color: bool = False, timestamps: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self._write = write
        self.timestamps = timestamps
        self._clock = clock
        self._stamp_second = -1
        self._stamp_text = ""
        self._encoding = encoding
        self.color = color
        self._pending: list[tuple[int, bytes]] = []   # (fd, encoded line)
        self.on_output_closed = on_output_closed
        self.output_closed = False
        # An interactive line editor plugs in here: it hides the input line
        # before output (before_output) and draws it again after (after_output).
        self.screen = None

    # -- the sink ------------------------------------------------------------------------

    def info(self, text: str) -> None:
        """One line of normal output (stdout)."""
        self._pending.append((STDOUT, self._encode(text)))

    def error(self, text: str) -> None:
        """One line saying what went wrong and what to do instead (stderr)."""
        self._pending.append((STDERR, self._encode(f"{self._style('error:', ERROR)} {text}")))

    def notice(self, text: str) -> None:
        """One line about something that happened (stdout, with the time if asked)."""
        self.info(self._stamp() + text)

    def _stamp(self) -> str:
        if not self.timestamps:
            return ""
        second = int(self._clock())
        if second != self._stamp_second:
            self._stamp_second = second
            self._stamp_text = time.strftime("[%H:%M:%S] ", time.localtime(second))
        return self._stamp_text

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

    def _emit(self, fd: int, chunks: list[bytes], newline: bool = True) -> None:
        if fd == STDOUT and self.output_closed:
            return
        if newline:
            chunks.append(b"")   # a final "\n" without copying all the data again
        data = b"\n".join(chunks)
        view = memoryview(data)
        try:
            while view:
                try:
                    written = self._write(fd, view)
                except BlockingIOError:
                    # Someone made our terminal non-blocking: wait for it, as a
                    # blocking write would, rather than drop lines.
                    select.select([], [fd], [])
                    continue
                view = view[written:]
        except OSError as exc:
            if fd == STDOUT and exc.errno in (errno.EPIPE, errno.EBADF, errno.EIO):
                self.output_closed = True
                if self.on_output_closed is not None:
                    self.on_output_closed()
            # a closed stderr leaves us nothing to complain to

    # -- words for what the node reports (the observer interface) ------------------------

    def listening(self, host: str, port: int) -> None:
        self.info(f'listening on {host}:{port}; type "help" for commands')

    def event(self, text: str) -> None:
        """A change in who we are connected to."""
        self.info(self._stamp() + self._style(text, EVENT))

    def peer_connected(self, info) -> None:
        if info.direction is Direction.OUTGOING:
            text = f"connected to {words.peer(info)}"
            if not info.speaks_protocol:
                text += " (it is not chat.py: it gets your messages as plain lines)"
        else:
            text = f"{words.peer(info)} connected to you"
            if not info.speaks_protocol:
                text += " (a plain TCP client, not chat.py; the port is its own)"
        self.event(text)

    def peer_upgraded(self, info) -> None:
        self.event(f"{words.peer(info)} is chat.py after all (its hello came late)")

    def peer_renamed(self, before, after) -> None:
        self.event(words.renamed(before, after))

    def bad_name(self, info, text: str) -> None:
        self.notice(words.refused_name(info, text))

    def peer_lost(self, info, lost) -> None:
        for line in words.lost(info, lost):
            self.event(line)

    def already_connected(self, info) -> None:
        self.notice(f"already connected to {info.host}:{info.port} as peer {info.id}")

    def messages_received(self, info, texts: list[str]) -> None:
        """Lines from one peer; the hot path of the program, so done in bulk."""
        prefix = self._stamp() + self._style(f"message from {words.peer(info)}:", MESSAGE) + " "
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
        self.notice(f"{words.peer(info)} sent a line longer than {limit} bytes; it was discarded")

    def connect_failed(self, host: str, port: int, failed) -> None:
        self.error(words.could_not_connect(host, port, failed))

    def incoming_refused(self, address, refusal, count: int, limit: int) -> None:
        self.notice(words.refused_incoming(address, refusal, count, limit))

    def bad_hello(self, address: str, refusal, detail: str) -> None:
        self.notice(words.bad_hello(address, refusal, detail))

    def accept_paused(self, errno, retry_s: float) -> None:
        self.notice(f"cannot accept new connections for now ({words.errno_words(errno)}); "
                  f"trying again in {retry_s:g} s")

    # -- words for command results ---------------------------------------------------------

    def sent(self, info, text: str) -> None:
        self.notice(f"{self._style(f'sent to {words.peer(info)}:', SENT)} {text}")

    def sent_to_all(self, count: int, missed: list, text: str) -> None:
        if len(missed) == count:
            self.error(f"the message was not sent: {words.plural(count, 'connection')} closed first")
        else:
            self.notice(f"{self._style(words.sent_to_all(count, missed), SENT)} {text}")

    def terminated(self, info) -> None:
        self.event(f"closed the connection to {words.peer(info)}")

    def peer_table(self, peers: list) -> None:
        if not peers:
            self.info('no connections; open one with "connect <ip> <port>"')
            return
        rows = [("id", "name", "IP address", "port", "connection")]
        for p in peers:
            how = "you connected" if p.direction is Direction.OUTGOING else "it connected"
            if not p.speaks_protocol:
                how += ", not chat.py"
            name = "-" if p.name is None else sanitize(p.name)
            rows.append((str(p.id), name, p.host, str(p.port), how))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            self.info(f"{r[0]:>{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  "
                      f"{r[3]:>{widths[3]}}  {r[4]}")

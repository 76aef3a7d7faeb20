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

With ``timestamps`` on, every event and message line starts with the local
time, ``[HH:MM:SS]``, formatted at most once a second (once per batch of
messages at worst).
"""

from __future__ import annotations

import errno
import time
from typing import Callable, Iterable, Sequence

from network.outcomes import (ConnectFailed, HelloFault, Lost, Nearby, PeerInfo, Recipient, Refusal,
                              Undelivered)

from . import words
from .base import TrustedEntry
from .sanitize import MAX_SHOWN_CHARS, all_safe, maybe_plain_ascii, sanitize

STDOUT, STDERR = 1, 2
# A stdout lost to these is simply gone (a closed pipe, a closed terminal): no words.
QUIET_LOSSES = (errno.EPIPE, errno.EIO, errno.EBADF, errno.ECONNRESET)
# SGR colours for our own labels.
MESSAGE, SENT, EVENT, ERROR = "1;36", "32", "33", "1;31"


class Console:
    def __init__(self, stdout, stderr=None, encoding: str = "utf-8",
                 color: bool = False, screen=None, timestamps: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        """``screen``: at a terminal, the input line's screen; it hides the input
        line before output (``before_output``) and draws it again after
        (``after_output``). It writes its own drawing to the stream directly."""
        self._out = stdout
        self._err = stderr if stderr is not None else stdout
        self.timestamps = timestamps
        self._clock = clock
        self._stamp_second = -1
        self._stamp_text = ""
        self._encoding = encoding
        self.color = color
        self._pending: list[tuple[int, bytes]] = []   # (stream, encoded line)
        self.screen = screen
        # The label of the last peer whose messages were shown ("message from peer 1
        # (...):"): a peer usually says several things in a row. PeerInfo is immutable.
        self._label_for: PeerInfo | None = None
        self._label = ""

    @property
    def output_closed(self) -> bool:
        return self._out.closed

    # -- the sink ------------------------------------------------------------------------

    def info(self, text: str) -> None:
        """One line of normal output (stdout)."""
        self._pending.append((STDOUT, self._encode(text)))

    def error(self, text: str) -> None:
        """One line saying what went wrong and what to do instead (stderr).

        Errors often echo what was typed or what a peer sent: sanitised here,
        once for every caller.
        """
        text = sanitize(text)
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

    def lines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.info(line)

    def after_shown(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once what was flushed is written to stdout: now if it is
        (the usual case), else when stdout has taken it (a reader that lags, a terminal
        after Ctrl-S). Delivery acknowledges only what is on the screen."""
        if self._out.closed or not self._out.get_buffer_size():
            callback()
        else:
            self._out.when_drained(callback)

    def flush(self) -> None:
        """Write everything collected since the last flush, in order."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        screen = self.screen
        if screen is not None:
            screen.before_output()
            # At a terminal, rows cut to its width, continuation rows marked.
            pending = [(fd, screen.wrap_output(text)) for fd, text in pending]
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
                self._say_last(words.output_unwritten(left))
            elif lost is not None and lost.errno not in QUIET_LOSSES:
                self._say_last(words.output_failed(lost))
        self._err.close()

    def _say_last(self, text: str) -> None:
        self._err.write(self._encode(f"{self._style('error:', ERROR)} {text}\n"))

    # -- words for what the node reports (the observer interface) ------------------------

    def listening(self, host: str, port: int) -> None:
        self.info(words.listening(host, port))

    def event(self, text: str) -> None:
        """A change in who we are connected to."""
        self.info(self._stamp() + self._style(text, EVENT))

    def peer_connected(self, info: PeerInfo) -> None:
        self.event(words.connected(info))

    def peer_upgraded(self, info: PeerInfo) -> None:
        self.event(words.upgraded(info))

    def peer_renamed(self, before: PeerInfo, after: PeerInfo) -> None:
        self.event(words.renamed(before, after))

    def bad_name(self, info: PeerInfo, text: str) -> None:
        self.notice(words.refused_name(info, text))

    def peer_lost(self, info: PeerInfo, lost: Lost) -> None:
        for line in words.lost(info, lost):
            self.event(line)

    def already_connected(self, info: PeerInfo) -> None:
        self.notice(words.already_connected(info))

    def messages_received(self, info: PeerInfo, texts: list[str]) -> None:
        """Lines from one peer; the hot path of the program, so done in bulk."""
        if info is not self._label_for:
            self._label_for = info
            self._label = self._style(words.message_from(info), MESSAGE) + " "
        prefix = self._stamp() + self._label if self.timestamps else self._label
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
            self.info(prefix + words.shorten(sanitize(text)))

    def line_too_long(self, info: PeerInfo, nbytes: int, limit: int) -> None:
        self.notice(words.line_too_long(info, limit))

    def connecting(self, host: str, port: int, peer_id: int) -> None:
        self.info(words.connecting(host, port, peer_id, cancellable=self.screen is not None))

    def connect_cancelled(self, host: str, port: int) -> None:
        self.info(words.connect_cancelled(host, port))

    def connect_failed(self, host: str, port: int, failed: ConnectFailed) -> None:
        self.error(words.could_not_connect(host, port, failed))

    def incoming_refused(self, address: str | None, refusal: Refusal, count: int,
                         limit: int) -> None:
        self.notice(words.refused_incoming(address, refusal, count, limit))

    def bad_hello(self, address: str, refusal: Refusal, fault: HelloFault) -> None:
        self.notice(words.bad_hello(address, refusal, fault))

    def identity_changed(self, address: str, trusted: TrustedEntry,
                         shown_id: str | None) -> None:
        for line in words.identity_changed(address, trusted, shown_id):
            self.error(line)

    def untrusted_refused(self, address: str, refusal: Refusal) -> None:
        self.info(words.untrusted_refused(address, refusal))

    def accept_paused(self, errno: int | None, retry_s: float) -> None:
        self.notice(words.accept_paused(errno, retry_s))

    def delivered(self, recipient: Recipient, texts: list) -> None:
        """Messages that had waited (queued, or in flight when a connection dropped)."""
        self.notice(f"{self._style(words.delivered(recipient, len(texts)), SENT)} "
                    f"{words.shorten(sanitize(texts[-1]))}")

    def undelivered(self, undelivered: Undelivered) -> None:
        self.error(words.undelivered(undelivered))

    def reconnecting(self, recipient: Recipient, address: tuple[str, int]) -> None:
        self.event(words.reconnecting(recipient, address))

    def store_problem(self, problem: str, detail: str) -> None:
        self.error(words.store_problem(problem, detail))

    def discovery_junk(self, count: int) -> None:
        self.notice(words.discovery_junk(count))

    def nearby_table(self, nearby: Sequence[Nearby], short_id: Callable[[bytes], str]) -> None:
        if not nearby:
            self.info(words.NOBODY_NEARBY)
            return
        rows = [words.NEARBY_HEADINGS]
        for n in nearby:
            rows.append((sanitize(n.name) if n.name else "-", short_id(n.fingerprint), n.address,
                         words.age(n.age_s),
                         words.claims(n.trusted_name) if n.trusted_name else "-"))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            self.info(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  "
                      f"{r[3]:>{widths[3]}}  {r[4]}")

    # -- words for command results ---------------------------------------------------------

    def sent(self, info: PeerInfo, text: str) -> None:
        self.notice(f"{self._style(words.sent_to(info), SENT)} {text}")

    def queued(self, name: str, text: str) -> None:
        self.notice(f"{self._style(words.queued_for(name), SENT)} {text}")

    def sent_to_all(self, count: int, missed: list[PeerInfo], text: str) -> None:
        if len(missed) == count:
            self.error(words.sent_to_nobody(count))
        else:
            self.notice(f"{self._style(words.sent_to_all(count, missed), SENT)} {text}")

    def terminated(self, info: PeerInfo) -> None:
        self.event(words.terminated(info))

    def peer_table(self, peers: list[PeerInfo],
                   short_id: Callable[[bytes], str] | None = None) -> None:
        if not peers:
            self.info(words.NO_CONNECTIONS)
            return
        rows = [words.PEER_TABLE_HEADINGS]
        for p in peers:
            rows.append((str(p.id), words.name_column(p), p.address, words.who_connected(p),
                         words.security(p, short_id or (lambda fp: fp.hex()[:7]))))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            self.info(f"{r[0]:>{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  "
                      f"{r[3]:<{widths[3]}}  {r[4]}")

    def trusted(self, info: PeerInfo, entry: TrustedEntry) -> None:
        self.event(words.trusted(info, entry))

    def trusted_id(self, entry: TrustedEntry) -> None:
        self.event(words.trusted_id(entry))

    def untrusted(self, entry: TrustedEntry) -> None:
        self.event(words.untrusted(entry))

    def trusted_list(self, entries: Sequence[TrustedEntry]) -> None:
        if not entries:
            self.info(words.NOBODY_TRUSTED)
            return
        width = max(len(e.name) for e in entries)
        for e in entries:
            where = f"  {words.last_seen(e.address)}" if e.address else ""
            self.info(f"{sanitize(e.name):<{width}}  {e.id}{where}")

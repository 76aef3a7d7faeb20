"""One message to every connection (``send all``) without waiting for the slowest.

Messages are coalesced, as Nagle's algorithm does for bytes: they go out at
the end of the first loop turn that adds none (so a message typed alone
leaves at the end of the next turn), or once ``FANOUT_BATCH_BYTES`` are
waiting. Then they are joined once and written to each connection below its
high-water mark with one call, so a script of many ``send all`` costs per
batch and connection, not per message and connection. A connection above
the mark gets them later, in order, as with ``Node.send``, and nobody waits
for it.

Each message's ``done(count, missed)`` comes when every connection has it
in its buffer or has closed: ``count`` connections were open when it left,
``missed`` lists the ``PeerInfo`` of those that closed first. Anything else
that goes to a connection (a single ``send``, a rename, a terminate, the
goodbye at exit) calls :meth:`Fanout.flush` first, so order is kept.
"""

from __future__ import annotations

import functools
import itertools
from typing import Callable

from . import wire
from .outcomes import Posted

FANOUT_BATCH_BYTES = 32 * 1024   # coalesced at most while a script keeps adding


class Fanout:
    def __init__(self, reactor, entries: Callable[[], list],
                 later: Callable[..., None],
                 numbered: Callable[..., None] | None = None,
                 record: Callable[[str], None] | None = None) -> None:
        self._reactor = reactor
        self._entries = entries             # the established connections' entries, now
        self._later = later                 # how every ``done`` is called: later
        # A delivery peer's messages are numbered by its conversation, one by one:
        # numbered(entry, text, done(Posted)). record(text): for the history, once.
        self._numbered = numbered
        self._record = record
        self._batch: list = []              # (text, encoded, done)
        self._bytes = 0
        self._fresh = False                 # the batch grew during this turn

    def add(self, text: str, done: Callable[[int, list], None]) -> None:
        if not self._batch:
            self._reactor.call_at_end_of_turn(self._turn_ended)
        encoded = wire.frame(text)
        self._batch.append((text, encoded, done))
        self._bytes += len(encoded)
        self._fresh = True

    def _turn_ended(self) -> None:
        if not self._batch:
            return
        if self._fresh and self._bytes < FANOUT_BATCH_BYTES:
            self._fresh = False     # more may come next turn: look again after it
            self._reactor.call_soon(self._reactor.call_at_end_of_turn, self._turn_ended)
            return
        self.flush()

    def flush(self) -> None:
        """Send the batch now (before anything else goes to a connection)."""
        if not self._batch:
            return
        batch, self._batch, self._bytes = self._batch, [], 0
        data = b"".join(encoded for _, encoded, _ in batch)
        ends = list(itertools.accumulate(len(encoded) for _, encoded, _ in batch))
        entries = self._entries()
        tallies = [_Tally(len(entries), done, self._later) for _, _, done in batch]
        now = self._reactor.time()
        if self._record is not None:
            for text, _, _ in batch:
                self._record(text)
        for entry in entries:
            if entry.conversation is not None and self._numbered is not None:
                for (text, _, _), tally in zip(batch, tallies):
                    tally.waiting += 1
                    self._numbered(entry, text, functools.partial(tally.one_posted, entry))
                continue
            if not entry.conn.send_batch(data, ends, now):
                for (text, _, _), tally in zip(batch, tallies):
                    tally.waiting += 1
                    entry.conn.wait((text, functools.partial(tally.one_done, entry)))
        for tally in tallies:
            tally.check()


class _Tally:
    """One message: who still has to take it, who closed first."""

    __slots__ = ("count", "done", "waiting", "missed", "later")

    def __init__(self, count: int, done: Callable[[int, list], None],
                 later: Callable[..., None]) -> None:
        self.count, self.done, self.waiting, self.missed = count, done, 0, []
        self.later = later

    def one_done(self, entry, ok: bool) -> None:
        if not ok:
            self.missed.append(entry.info)      # as it was when it closed
        self.waiting -= 1
        self.check()

    def one_posted(self, entry, posted: Posted) -> None:
        self.one_done(entry, posted is Posted.WRITTEN)

    def check(self) -> None:
        if self.waiting == 0 and self.done is not None:
            done, self.done = self.done, None
            self.later(done, self.count, self.missed)

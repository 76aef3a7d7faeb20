"""Delivered means received: numbered messages, acknowledgements and the outbox.

A :class:`Conversation` is what we and one other identity have said to each
other: our stream (a random id made once, and the number of our next
message), the outbox (our messages it has not acknowledged, oldest first) and
its stream as far as we have stored and shown it. It is kept in the
:class:`~network.store.Store`, so numbers survive restarts and ``kill -9``:
a number belongs to the conversation, not to a connection (XEP-0198's
per-connection ``h`` cannot tell a resend after a restart from a new message).
A chat.py peer without an identity gets a conversation for one connection
only: numbered and acknowledged, but nobody to resend to once it ends.

How a connection carries a conversation (the wire format is in
``network.wire``): each side first says ``GOT`` (what of the other's stream it
has); on the other's first ``GOT`` a side acknowledges what that covers,
says ``FROM`` (the number of its first unacknowledged message) and sends the
unacknowledged tail, then new messages as they come. Numbers are implicit
(one per text line), so the hot path only counts. A number already shown is
dropped, so a resend shows nothing twice. A ``GOT`` says only what stdout has
taken (:meth:`Delivery.take_shown` notes the turn's numbers once the console
has flushed, :meth:`Delivery.acknowledge` tells them once that output is
written), and that is also the number stored: a receiver killed with messages
still in its output buffer has them sent again after its restart, never
counted as seen and lost to the screen.

If we were killed after writing a message and before storing it, the other
side's first ``GOT`` is ahead of our stored numbers: we carry on after it, so
no number is used twice.

:class:`Delivery` owns the conversations; the node tells it what connections
say and do, and it tells the observer what was delivered.
"""

from __future__ import annotations

import collections
import functools
import time
from typing import Callable

from . import wire
from .outcomes import PeerInfo, Posted, Recipient, Undelivered
from .store import History, Store


class Outgoing:
    """One message of ours that its recipient has not acknowledged yet."""

    __slots__ = ("seq", "text", "at", "done", "queued", "key")

    def __init__(self, seq: int, text: str, at: float, done, queued: bool, key: str) -> None:
        self.seq = seq
        self.key = key          # its name in the history, for good (its number may change)
        self.text = text
        self.at = at
        self.done = done        # the sender's callback (Posted), until it is called
        self.queued = queued    # it waited for a connection: its delivery is worth a line


class Conversation:
    """Our messages with one identity (or one connection, without identities)."""

    __slots__ = ("peer", "out_stream", "next_seq", "outbox", "in_stream", "in_upto", "in_shown",
                 "carrier", "resumed", "last_seen", "name", "unconfirmed_from")

    def __init__(self, peer: bytes | None, out_stream: str, next_seq: int = 1,
                 in_stream: str | None = None, in_upto: int = 0) -> None:
        self.peer = peer                 # its fingerprint (None: this connection only)
        self.out_stream = out_stream
        self.next_seq = next_seq
        self.outbox: collections.deque[Outgoing] = collections.deque()
        self.in_stream = in_stream
        self.in_upto = in_upto           # its last number we have (shown, or on its way)
        self.in_shown = in_upto          # its last number stdout has taken: stored, said
        self.carrier = None              # the connection that carries it now
        self.resumed = False             # that connection has its GOT: we may send
        self.last_seen: PeerInfo | None = None    # the peer as it was last shown
        self.name: str | None = None     # our user's name for it (trusted)
        # Loaded from the store: numbers from here on may have been used by a run that
        # died before storing them. The other side's first GOT tells (None: settled).
        self.unconfirmed_from: int | None = None

    @property
    def persistent(self) -> bool:
        return self.peer is not None

    def recipient(self, connected: bool | None = None) -> Recipient:
        """Whom it is with: by its connection while one carries it (``connected``: say
        so anyway, for the one that just ended), else by our name for it."""
        seen = self.last_seen
        name = self.name or (seen.trusted_name or seen.name if seen else None)
        if connected is None:
            connected = self.carrier is not None
        if connected:
            return Recipient(name, seen)
        return Recipient(name, None, (seen.host, seen.port) if seen else None)

    def address(self) -> str:
        seen = self.last_seen
        return seen.address if seen else "-"


class Delivery:
    def __init__(self, store: Store, history: History, later: Callable[..., None],
                 delivered: Callable[[Recipient, list], None]) -> None:
        self.store = store
        self.history = history
        self._later = later
        self._delivered = delivered          # messages that had waited are delivered
        self._conversations: dict[bytes, Conversation] = {}
        self._ack_due: dict = {}             # connection -> conversation, this turn
        # Messages to write once the turn is stored (a number leaves only once it is
        # on disk, so a run killed in between never used a number it did not keep).
        self._unreleased: list = []          # (conversation, connection, Outgoing)
        for peer, saved in store.load().items():
            conv = Conversation(peer, saved.out_stream, saved.next_seq, saved.in_stream,
                                saved.in_upto)
            for seq, at, text, key in saved.outbox:
                conv.outbox.append(Outgoing(seq, text, at, None, True, key))
            conv.unconfirmed_from = saved.next_seq
            self._conversations[peer] = conv

    # -- conversations --------------------------------------------------------------

    def conversation(self, peer: bytes | None) -> Conversation:
        """The conversation with identity ``peer`` (made now if new); ``None``: one
        for a single connection, never stored."""
        if peer is None:
            return Conversation(None, wire.new_stream())
        conv = self._conversations.get(peer)
        if conv is None:
            conv = self._conversations[peer] = Conversation(peer, wire.new_stream())
            self._stored(conv)
        return conv

    def known(self, peer: bytes) -> Conversation | None:
        return self._conversations.get(peer)

    def named(self, conv: Conversation, name: str | None, seen: PeerInfo | None = None) -> None:
        """Our user's name for ``conv``'s identity (how the outbox and history say whom),
        and the connection as it is shown now, if one carries it."""
        conv.name = name
        if seen is not None:
            conv.last_seen = seen

    def waiting(self) -> list[Conversation]:
        """Conversations with messages not yet acknowledged."""
        return [conv for conv in self._conversations.values() if conv.outbox]

    def _stored(self, conv: Conversation) -> None:
        if conv.peer is not None:
            self.store.conversation(conv.peer, conv.out_stream, conv.next_seq, conv.in_stream,
                                    conv.in_shown)

    # -- a connection carries it -----------------------------------------------------

    def attach(self, conv: Conversation, conn, info: PeerInfo) -> None:
        """``conn`` (a delivery peer, just accepted) carries ``conv`` from now on."""
        if conv.carrier is not None and conv.carrier is not conn:
            conv.resumed = False
        conv.carrier = conn
        conv.last_seen = info
        conn.acknowledge(conv.in_stream, conv.in_shown)

    def detach(self, conv: Conversation, conn, info: PeerInfo | None) -> Undelivered | None:
        """``conn`` ended: what it leaves unacknowledged (kept, or lost without identity)."""
        if info is not None:
            conv.last_seen = info
        if conv.carrier is not conn:
            return None
        conv.carrier = None
        conv.resumed = False
        if not conv.outbox:
            return None
        count = len(conv.outbox)
        if conv.persistent:
            for out in conv.outbox:
                self._posted(out, Posted.QUEUED)
                out.queued = True           # they wait now: their delivery is news
            return Undelivered(conv.recipient(connected=True), count, queued=True)
        for out in conv.outbox:
            self._posted(out, Posted.LOST)
        conv.outbox.clear()
        return Undelivered(conv.recipient(connected=True), count, queued=False)

    def got(self, conv: Conversation, conn, stream: str | None, upto: int) -> None:
        """``GOT``: it has our ``stream`` up to ``upto``. The first on a connection resumes."""
        first = self.awaits_got(conv, conn)
        if first and conv.unconfirmed_from is not None:
            # Before we send anything on it: what it has is what earlier runs sent.
            self._confirm_numbers(conv, upto if stream == conv.out_stream else 0)
        if stream == conv.out_stream:
            self._acknowledged(conv, min(upto, conv.next_seq - 1))
        if first:
            conv.resumed = True
            conn.number_from(conv.out_stream,
                             conv.outbox[0].seq if conv.outbox else conv.next_seq)
            self._unreleased.extend([(conv, conn, out) for out in conv.outbox])

    @staticmethod
    def awaits_got(conv: Conversation, conn) -> bool:
        """``conn`` carries ``conv`` and has not yet said what it has (its first GOT)."""
        return conv.carrier is conn and not conv.resumed

    def _confirm_numbers(self, conv: Conversation, upto: int) -> None:
        """The first GOT since we loaded ``conv`` (before this run sent it anything): did
        a run of ours that died use numbers it never stored? Then the other side has them
        (up to ``upto``): messages of ours numbered since the load move after them, so no
        number means two messages."""
        start, conv.unconfirmed_from = conv.unconfirmed_from, None
        if upto < start:
            return
        seq = upto + 1
        for out in conv.outbox:
            if out.seq >= start:
                self.store.renumbered(conv.peer, out.seq)
                out.seq = seq
                self.store.queued(conv.peer, seq, out.at, out.text, out.key)
                seq += 1
        conv.next_seq = seq
        self._stored(conv)

    def _acknowledged(self, conv: Conversation, upto: int) -> None:
        outbox = conv.outbox
        if not outbox or outbox[0].seq > upto:
            return
        keys = []
        waited = []
        while outbox and outbox[0].seq <= upto:
            out = outbox.popleft()
            keys.append(out.key)
            self._posted(out, Posted.WRITTEN)
            if out.queued:
                waited.append(out.text)
        if waited:
            self._delivered(conv.recipient(), waited)
        if conv.peer is not None:
            self.store.delivered(conv.peer, upto)
            self.history.changed(conv.peer, keys, "delivered")

    def numbering(self, conv: Conversation, stream: str) -> None:
        """``FROM``: its messages on this connection are numbered in ``stream``."""
        if stream != conv.in_stream:
            # A stream we do not know (a first contact, or it lost its store): counted
            # afresh from the number it gives.
            conv.in_stream = stream
            conv.in_upto = conv.in_shown = 0
            self._stored(conv)

    def received(self, conv: Conversation, conn, seq: int, texts: list) -> list:
        """Messages ``seq``, ``seq + 1``, ... arrived: those not shown before."""
        if not seq:
            return texts
        last = seq + len(texts) - 1
        if last <= conv.in_upto:
            self._ack_due[conn] = conv       # a resend of what it missed our GOT for
            return []
        if seq <= conv.in_upto:
            texts = texts[conv.in_upto - seq + 1:]
            seq = conv.in_upto + 1
        conv.in_upto = last
        self._ack_due[conn] = conv
        return texts

    # -- sending ----------------------------------------------------------------------

    def send(self, conv: Conversation, text: str, done) -> Posted | None:
        """Number ``text`` and send it (now, or once connected); ``done(Posted)`` later.

        Returns ``QUEUED`` at once when nothing carries the conversation (``done``
        is then never called), else ``None``.
        """
        now = time.time()
        seq = conv.next_seq
        conv.next_seq = seq + 1
        carried = conv.carrier is not None
        key = f"{conv.out_stream}:{seq}"
        out = Outgoing(seq, text, now, done if carried else None, not carried, key)
        conv.outbox.append(out)
        if conv.peer is not None:
            self._stored(conv)
            self.store.queued(conv.peer, seq, now, text, key)
        self.history.outgoing(conv.peer, conv.recipient().name, conv.address(), text,
                              "sent" if conv.resumed else "queued", key, at=now)
        if conv.resumed:
            self._unreleased.append((conv, conv.carrier, out))
        return None if carried else Posted.QUEUED

    def release(self) -> None:
        """Write the messages sent (or resumed) since the last :meth:`save`: call it
        right after one."""
        if not self._unreleased:
            return
        batch, self._unreleased = self._unreleased, []
        for conv, conn, out in batch:
            if conv.carrier is conn and conv.resumed:    # else detach has told the sender
                conn.send(out.text, functools.partial(self._written, out))

    def _written(self, out: Outgoing, ok: bool) -> None:
        # Not written (the connection ended first): detach tells the sender.
        if ok:
            self._posted(out, Posted.WRITTEN)

    def _posted(self, out: Outgoing, posted: Posted) -> None:
        if out.done is not None:
            done, out.done = out.done, None
            self._later(done, posted)

    # -- once per turn ----------------------------------------------------------------

    def save(self) -> None:
        """The turn's numbers and outbox to disk: before the turn's bytes leave."""
        self.store.save()

    @property
    def owes_acks(self) -> bool:
        return bool(self._ack_due)

    def take_shown(self) -> dict:
        """Right after the console flushed the turn: what each connection's messages
        reached (``conn -> (conversation, stream, number)``), for :meth:`acknowledge`
        once stdout has taken that output."""
        due, self._ack_due = self._ack_due, {}
        return {conn: (conv, conv.in_stream, conv.in_upto) for conn, conv in due.items()}

    def acknowledge(self, shown: dict) -> None:
        """What :meth:`take_shown` noted is on stdout now: stored, and one ``GOT`` per
        connection still open."""
        for conn, (conv, stream, upto) in shown.items():
            if stream != conv.in_stream:
                continue                # it started another stream since: that one counts
            if upto > conv.in_shown:
                conv.in_shown = upto
                self._stored(conv)
            if conn.transport is not None and not conn.transport.closed:
                conn.acknowledge(stream, upto)

    def close(self) -> None:
        self.store.close()
        self.history.close()

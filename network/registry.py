"""Where every connection of the node is, and what the node knows about each.

A connection is in exactly one place at a time, and only the methods of
:class:`Registry` move it:

    pending ---establish---> live ---linger---> lingering ---end---> (gone)
       \\________________________linger______________/^

* **pending**: still in its handshake (a hello not yet decided);
* **live**: established, listed under its id (``list`` shows exactly these);
* **lingering**: closing (terminated, refused, a retired duplicate, a failed
  handshake), still read so that its last words count, never listed.

Each connection has an :class:`Entry`: the node's bookkeeping for it (its id,
where it was going, why it is closing, ...). The connection adapter itself
knows nothing of this; the entry's fields are written in this module only
(``tests/test_structure.py`` holds that): by the registry's transitions, and by
the entry's own named methods (``closing``, ``defer``, ``stands_for`` ...),
which say what happened rather than which field changes.

"Peer N is this connection" is kept once: the live map from id to entry; the
``PeerInfo`` the observer is shown is the entry's ``info``.

**Ids** are small integers starting at 1, never reused or renumbered during a
run: when peer 1 leaves, peer 2 is still 2, so a ``send 2`` typed while
someone else disconnects can never reach the wrong person. An outgoing
connection's id is *reserved* when the ``connect`` command runs, before
anything else can arrive, so a script's first ``connect`` is peer 1 whoever
knocks meanwhile. An incoming connection takes the next fresh number when it
is established. The id of a connect that failed was never a connection: the
next ``connect`` gets it again (so ``connecting ... as peer 1`` after a typo
means the same 1), but nothing else does.
"""

from __future__ import annotations

import itertools
import types
from typing import Iterator, Mapping

from .connection import Connection
from .outcomes import CloseReason, PeerInfo

_NO_DETAIL: Mapping = types.MappingProxyType({})     # shared by every entry closed without


class Entry:
    """The node's record of one connection."""

    __slots__ = ("conn", "info", "peer_id", "target", "quiet", "moved", "counted", "farewell",
                 "deferred", "close_reason", "close_detail", "trusted_name", "conversation")

    def __init__(self, conn: Connection, target: tuple[str, int] | None, peer_id: int,
                 counted: bool, farewell: bool) -> None:
        self.conn = conn
        self.info: PeerInfo | None = None    # once established (or the peer it stands for)
        self.peer_id = peer_id               # reserved by our connect (0: none yet)
        self.target = target                 # outgoing: the address we connected to
        self.quiet = farewell                # closing without a word to our user
        self.moved = False                   # the peer said it gives way to its duplicate
        self.counted = counted               # counts against its address's share
        self.farewell = farewell             # refused at the door: it only says why
        self.deferred = False                # its hello waits for our own connect
        self.close_reason: CloseReason | None = None    # set when we close it on purpose
        self.close_detail: Mapping = _NO_DETAIL
        self.trusted_name: str | None = None    # our user's name for its identity
        self.conversation = None                # delivery: what it carries (network.delivery)

    # -- what happened to it (the only writers of these fields besides the Registry) --

    def closing(self, reason: CloseReason, **detail) -> None:
        """We close it on purpose, for ``reason`` (shown once it is gone)."""
        self.close_reason, self.close_detail = reason, detail

    def said_goodbye(self) -> None:
        if self.close_reason is None:
            self.close_reason = CloseReason.LEFT

    def gives_way(self) -> None:
        """The peer said this connection gives way to its duplicate."""
        self.moved = True

    def defer(self, deferred: bool = True) -> None:
        self.deferred = deferred

    def trusted_as(self, name: str | None) -> None:
        self.trusted_name = name

    def stands_for(self, info: PeerInfo | None) -> None:
        """A lingering duplicate: what it still brings is shown as this peer's."""
        self.info = info

    def use_id(self, peer_id: int) -> None:
        self.peer_id = peer_id

    def converses(self, conversation) -> None:
        """A delivery peer: it carries this conversation (numbered, acknowledged)."""
        self.conversation = conversation


class Registry:
    def __init__(self) -> None:
        self._entries: dict[Connection, Entry] = {}
        self._pending: set[Entry] = set()
        self._live: dict[int, Entry] = {}
        self._lingering: set[Entry] = set()
        self._kept: dict[tuple, PeerInfo] = {}     # (fingerprint, node id) -> place kept
        self._ids = itertools.count(1)
        self._unused: int | None = None            # the id of a connect that failed

    # -- ids ------------------------------------------------------------------------

    def new_id(self) -> int:
        """An id for an incoming connection being established: always a fresh one."""
        return next(self._ids)

    def id_for_connect(self) -> int:
        """An id for our next outgoing connection (a failed connect's, if there is one)."""
        if self._unused is not None:
            peer_id, self._unused = self._unused, None
            return peer_id
        return next(self._ids)

    def id_unused(self, peer_id: int) -> None:
        """That connect failed: its id never named a connection."""
        self._unused = peer_id

    # -- transitions ------------------------------------------------------------------

    def add(self, conn: Connection, *, target: tuple[str, int] | None = None, peer_id: int = 0,
            counted: bool = False, farewell: bool = False) -> Entry:
        """A new connection: pending (or lingering at once, for a refusal at the door)."""
        entry = Entry(conn, target, peer_id, counted, farewell)
        self._entries[conn] = entry
        (self._lingering.add if farewell else self._pending.add)(entry)
        return entry

    def establish(self, entry: Entry, info: PeerInfo) -> None:
        """It is peer ``info.id`` from now on (pending, or taking over a place kept)."""
        self._pending.discard(entry)
        self._live[info.id] = entry
        entry.info, entry.peer_id = info, info.id

    def update(self, entry: Entry, info: PeerInfo) -> None:
        """What we know of a peer changed (its name, its trust, an upgrade to chat.py)."""
        entry.info = info

    def linger(self, entry: Entry, quiet: bool = False) -> None:
        """It is closing: no longer pending or listed (``quiet``: no word when it ends)."""
        if self.is_live(entry):
            del self._live[entry.info.id]
        self._pending.discard(entry)
        self._lingering.add(entry)
        if quiet:
            entry.quiet, entry.deferred = True, False

    def end(self, conn: Connection) -> tuple[Entry, bool]:
        """It is gone: ``(its entry, whether it was live)``."""
        entry = self._entries.pop(conn)
        self._pending.discard(entry)
        self._lingering.discard(entry)
        live = self.is_live(entry)
        if live:
            del self._live[entry.info.id]
        return entry, live

    # -- places kept for a duplicate's replacement -----------------------------------

    def keep_place(self, key: tuple, info: PeerInfo) -> None:
        self._kept[key] = info

    def take_place(self, key: tuple) -> PeerInfo | None:
        return self._kept.pop(key, None)

    def give_up_place(self, key: tuple, info: PeerInfo) -> bool:
        """The replacement never came: forget the place (True if it was still kept)."""
        if self._kept.get(key) is info:
            del self._kept[key]
            return True
        return False

    # -- looking ----------------------------------------------------------------------

    def maybe_entry(self, conn: Connection) -> Entry | None:
        return self._entries.get(conn)

    def live(self, peer_id: int) -> Entry | None:
        return self._live.get(peer_id)

    def live_entries(self) -> list[Entry]:
        return list(self._live.values())

    def pending_entries(self) -> list[Entry]:
        return list(self._pending)

    def everyone(self) -> list[Entry]:
        return [*self._live.values(), *self._pending, *self._lingering]

    def is_live(self, entry: Entry) -> bool:
        return entry.info is not None and self._live.get(entry.info.id) is entry

    def peers(self) -> Iterator[PeerInfo]:
        for peer_id in sorted(self._live):
            yield self._live[peer_id].info

    def find_address(self, host: str, port: int) -> PeerInfo | None:
        for entry in self._live.values():
            if entry.info.host == host and entry.info.port == port:
                return entry.info
        return None

    @property
    def open_count(self) -> int:
        """Connections that count against --max-peers: live and pending."""
        return len(self._live) + len(self._pending)

    @property
    def busy(self) -> bool:
        return bool(self._entries)

    def counts(self) -> tuple[int, int, int]:
        """``(live, pending, lingering)``: how many connections are in each place."""
        return len(self._live), len(self._pending), len(self._lingering)

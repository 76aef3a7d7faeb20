"""Two connections to the same peer: which one stays (a mixin of the node, like ``events``).

When A connects to B while B connects to A, each side holds two connections
to the same node. Both keep the one *initiated by the lower instance id* (the
rule BitTorrent and Syncthing use), so both keep the same one, and the other
is *retired*: it says ``BYE duplicate``, half-closes, and what it still brings
is shown under the kept connection's id. A side that hears ``BYE duplicate``
before it has seen the other connection keeps the place (the id) for it.
"""

from __future__ import annotations

from dataclasses import replace

from .connection import Connection
from .outcomes import CloseReason, Lost
from .peers import PeerInfo


class Duplicates:
    def _other_connection(self, conn: Connection, node_id: str) -> Connection | None:
        """A live connection to the same peer: established, or deferred with its hello.

        The same peer is the same instance id *and* the same proven identity: a
        stranger who learned someone's instance id cannot pass for them, nor make
        them a duplicate of itself.
        """
        for other in [*self._by_id.values(), *self._pending]:
            theirs = other.protocol.theirs
            if other is not conn and theirs is not None and theirs.node_id == node_id \
                    and other.fingerprint == conn.fingerprint \
                    and (other.info is not None or other.deferred):
                return other
        return None

    def _keep(self, winner: Connection, loser: Connection) -> None:
        """``winner`` stays (under the id already shown, or the one our connect reserved)."""
        attempt = self._attempt
        shown = loser.info
        if winner.info is None and shown is None and attempt is not None \
                and loser is attempt.conn:
            winner.peer_id = loser.peer_id
        elif winner.info is not None and attempt is not None and loser is attempt.conn:
            self._observer.already_connected(winner.info)
        self._retire(loser)
        if winner.info is None:
            if shown is not None:
                info = replace(shown, direction=winner.direction)
                winner.peer_id = info.id
                self._accept(winner, winner.protocol.theirs, info)
                if attempt is not None and winner is attempt.conn:
                    self._observer.already_connected(info)
            else:
                self._accept(winner, winner.protocol.theirs)
        loser.info = winner.info

    def _retire(self, loser: Connection) -> None:
        """Close a duplicate quietly: half-close, show what it still brings, no event."""
        if loser.info is not None and self._by_id.get(loser.info.id) is loser:
            del self._by_id[loser.info.id]
        self._pending.discard(loser)
        loser.retired, loser.deferred = True, False
        self._lingering.add(loser)
        now = self._reactor.time()
        loser.protocol.answer_hello(now)   # so the other side can tell which duplicate it is
        loser.handle(loser.protocol.finish(now))

    def _await_replacement(self, conn: Connection, info: PeerInfo) -> None:
        """A connection that gave way to its duplicate: keep its place for the other one.

        If the other one never comes (``linger_s``), the peer is reported gone after all.
        """
        key = (conn.fingerprint, info.node_id)
        self._moved[key] = info

        def gone() -> None:
            if self._moved.get(key) is info:
                del self._moved[key]
                self._observer.peer_lost(info, Lost(CloseReason.CLOSED))
        self._reactor.call_later(self.options.timing.linger_s, gone)

"""The peer table: who we are connected to, under which id. Pure data.

Ids are small integers starting at 1, never reused or renumbered during a
run: when peer 1 leaves, peer 2 is still 2, so a ``send 2`` typed while
someone else disconnects can never reach the wrong person.

An outgoing connection's id is *reserved* when the ``connect`` command runs,
before anything else can arrive, so a script's first ``connect`` is peer 1
whoever knocks meanwhile. An incoming connection takes the next fresh number
when it is established. The id of a connect that failed was never a
connection: the next ``connect`` gets it again (so ``connecting ... as peer
1`` after a typo means the same 1), but nothing else does.
"""

from __future__ import annotations

import itertools
from typing import Iterator

from .outcomes import PeerInfo

__all__ = ["PeerInfo", "PeerTable"]


class PeerTable:
    def __init__(self) -> None:
        self._peers: dict[int, PeerInfo] = {}
        self._ids = itertools.count(1)
        self._unused: int | None = None    # the id of a connect that failed

    def reserve(self) -> int:
        """An id for an incoming connection being established: always a fresh one."""
        return next(self._ids)

    def reserve_for_connect(self) -> int:
        """An id for our next outgoing connection (a failed connect's, if there is one)."""
        if self._unused is not None:
            peer_id, self._unused = self._unused, None
            return peer_id
        return next(self._ids)

    def unused(self, peer_id: int) -> None:
        """That connect failed: its id never named a connection."""
        self._unused = peer_id

    def put(self, info: PeerInfo) -> None:
        """Add or replace (the same id, e.g. after an upgrade to a chat.py peer)."""
        self._peers[info.id] = info

    def remove(self, peer_id: int) -> PeerInfo | None:
        return self._peers.pop(peer_id, None)

    def get(self, peer_id: int) -> PeerInfo | None:
        return self._peers.get(peer_id)

    def __len__(self) -> int:
        return len(self._peers)

    def __iter__(self) -> Iterator[PeerInfo]:
        return iter(sorted(self._peers.values(), key=lambda info: info.id))

    def maybe_find_address(self, host: str, port: int) -> PeerInfo | None:
        for info in self._peers.values():
            if info.host == host and info.port == port:
                return info
        return None

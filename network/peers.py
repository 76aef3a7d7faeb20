"""The peer table: who we are connected to, under which id. Pure data.

Ids are small integers handed out in the order connections are established,
starting at 1, and never reused or renumbered during a run: when peer 1
leaves, peer 2 is still 2, so a ``send 2`` typed while someone else
disconnects can never reach the wrong person.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator

OUTGOING = "outgoing"
INCOMING = "incoming"


@dataclass(frozen=True)
class PeerInfo:
    id: int
    host: str
    port: int            # the peer's listening port (a raw client's source port)
    direction: str       # OUTGOING (we connected) or INCOMING
    speaks_protocol: bool  # sent our hello; False for nc and other programs
    node_id: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class PeerTable:
    def __init__(self) -> None:
        self._peers: dict[int, PeerInfo] = {}
        self._ids = itertools.count(1)

    def add(self, host: str, port: int, direction: str, speaks_protocol: bool,
            node_id: str | None = None) -> PeerInfo:
        info = PeerInfo(next(self._ids), host, port, direction, speaks_protocol, node_id)
        self._peers[info.id] = info
        return info

    def remove(self, peer_id: int) -> PeerInfo | None:
        return self._peers.pop(peer_id, None)

    def get(self, peer_id: int) -> PeerInfo | None:
        return self._peers.get(peer_id)

    def __len__(self) -> int:
        return len(self._peers)

    def __iter__(self) -> Iterator[PeerInfo]:
        # dicts keep insertion order and ids only grow: this is id order.
        return iter(list(self._peers.values()))

    def maybe_find_address(self, host: str, port: int) -> PeerInfo | None:
        for info in self._peers.values():
            if info.host == host and info.port == port:
                return info
        return None

    def maybe_find_node(self, node_id: str) -> PeerInfo | None:
        for info in self._peers.values():
            if info.node_id == node_id:
                return info
        return None

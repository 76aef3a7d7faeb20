"""Our one outgoing connect in flight, from the ``connect`` command until it settles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Attempt:
    ip: str
    port: int
    peer_id: int                          # reserved when the command ran
    done: Callable[[bool], None]          # the command's callback: settled, ok or not
    connector: object = None              # the TCP connect, until it completes
    conn: object = None                   # then the connection, until its handshake ends
    deferred: list = field(default_factory=list)   # incoming hellos that may be this peer

    def resolved(self) -> bool:
        """Do we know who answered (or that nobody will)?"""
        return self.conn is not None and self.conn.protocol.theirs is not None

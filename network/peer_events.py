"""What the peer protocol reports: one frozen dataclass per event.

Kept apart from the state machine (``peer_protocol``), which re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import wire
from .outcomes import Refusal


@dataclass(frozen=True)
class HelloReceived:
    """A valid hello: call accept_peer() or refuse() before anything else."""
    hello: wire.Hello
    late: bool = False      # it came after the plain decision (a slow link)


@dataclass(frozen=True)
class BecamePlain:
    """The other side is not chat.py: it will get plain lines only."""


@dataclass(frozen=True)
class Messages:
    texts: list


@dataclass(frozen=True)
class NameChanged:
    """A chat.py peer now calls itself ``name`` (``None``: no name, or ``bad`` was refused)."""
    name: str | None
    bad: str | None = None      # the text it announced, if that is not a name (peer text)


@dataclass(frozen=True)
class LineDiscarded:
    nbytes: int
    limit: int


@dataclass(frozen=True)
class PeerRefused:
    """It refused us (``REFUSE``); it will hang up."""
    refusal: wire.PeerRefusal


@dataclass(frozen=True)
class Goodbye:
    """It said BYE: it is exiting."""


@dataclass(frozen=True)
class BadHello:
    """Its hello broke the wire format, or speaks no version of ours; we refused it."""
    refusal: Refusal
    detail: str


@dataclass(frozen=True)
class PeerSilent:
    """A chat.py peer said nothing for too long: close the connection."""
    silent_s: float


@dataclass(frozen=True)
class HandshakeTimedOut:
    """It began a hello and never finished it."""


@dataclass(frozen=True)
class CloseNow:
    """FINISHING is over (the other side hung up, or ``linger_s`` passed)."""

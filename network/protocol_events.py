"""The peer protocol's states, and the events it hands to the node (see
:mod:`network.peer_protocol`).

Plain data, compared by value in tests. The node handles each event by type.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from . import wire
from .outcomes import HelloFault, Refusal


class State(enum.Enum):
    HANDSHAKE = "handshake"
    SECURING = "securing"          # the TLS handshake runs (in the layer below us)
    PEER = "peer"
    PLAIN = "plain"
    FINISHING = "finishing"
    CLOSED = "closed"


@dataclass(frozen=True)
class HelloReceived:
    """A valid hello: call accept_peer() or refuse() before anything else."""
    hello: wire.Hello


@dataclass(frozen=True)
class BecamePlain:
    """The other side is not chat.py: it will get plain lines only."""


@dataclass
class Messages:
    """Lines of text, in order (the hot path: a plain dataclass is quicker to make)."""
    texts: list
    seq: int = 0        # the number of the first (a delivery peer's); 0: not numbered


@dataclass(frozen=True)
class Got:
    """It has stored and shown our stream ``stream`` up to message ``upto`` (``GOT``)."""
    stream: str | None
    upto: int


@dataclass(frozen=True)
class Numbering:
    """Its next message is number ``seq`` of its stream ``stream`` (``FROM``)."""
    stream: str
    seq: int


@dataclass(frozen=True)
class NameChanged:
    """It announced another name (``None``: none), or one that breaks the rule (``bad``)."""
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
    """It said BYE: it is exiting, or (``duplicate``) this connection is being replaced
    by another one between the same two peers, which keeps its place."""
    duplicate: bool = False


@dataclass(frozen=True)
class BadHello:
    """Its hello broke the wire format, or speaks no version of ours; we refused it."""
    refusal: Refusal
    fault: HelloFault


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


@dataclass(frozen=True)
class StartTLS:
    """Both sides have identities: switch the connection to TLS now.

    ``cert_der`` is the certificate the other side announced; the TLS
    handshake must prove it holds its key. ``server_side``: we accepted the
    connection (the side that connected is the TLS client).
    """
    cert_der: bytes
    server_side: bool

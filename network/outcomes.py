"""The network's vocabulary: what can happen to a connection, as data.

The network side never words anything for a user. It reports *outcomes*:
an Enum saying what happened, plus the numbers that go with it (an errno,
a limit, seconds of silence, how many messages were not sent). The console,
on the user's side, is the one place that turns them into sentences.

This module is the only part of ``network`` that the commands may import:
it has no behaviour, only names, so the user side can catch
:class:`Refused` and read the Enums without knowing how the node works.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Direction(enum.Enum):
    OUTGOING = "outgoing"      # we connected
    INCOMING = "incoming"      # it connected to us


def join_host_port(host: str, port: int) -> str:
    """The one way an address is written: ``10.0.0.5:8080``, and an IPv6 address in
    brackets, ``[fe80::1%eth0]:8080`` (RFC 3986), so the port cannot be read as part
    of it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host_port(text: str) -> tuple[str, str | None]:
    """What a user typed (or a file holds) as ``(host, port text)``; ``None`` when no
    port is given: ``[::1]:8080``, ``10.0.0.5:8080``, ``name:8080``; ``::1`` and
    ``[::1]`` (an IPv6 address without a port: more than one colon, or brackets).
    The parts are not checked here."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            return text, None
        if not rest:
            return host, None
        if rest.startswith(":"):
            return host, rest[1:]
        return text, None
    if text.count(":") == 1:
        host, _, port_text = text.partition(":")
        return host, port_text
    return text, None


@dataclass(frozen=True)
class PeerInfo:
    id: int
    host: str
    port: int               # the peer's listening port (a plain client's source port)
    direction: Direction
    speaks_protocol: bool   # a chat.py peer (False for nc and other programs)
    node_id: str | None = None
    name: str | None = None     # what it calls itself (chat.py peers only; a label, not proof)
    fingerprint: bytes | None = None    # its identity, proven over TLS (None: plain)
    trusted_name: str | None = None     # the name our user gave that identity

    @property
    def address(self) -> str:
        return join_host_port(self.host, self.port)


class CloseReason(enum.Enum):
    """Why an established connection ended."""

    CLOSED = "closed"            # the other side closed it (without saying goodbye)
    LEFT = "left"                # the other side exited (it said BYE)
    RESET = "reset"              # the connection failed (reset, broken pipe ...)
    TIMED_OUT = "timed out"      # a chat.py peer stopped answering (heartbeats)
    STALLED = "stalled"          # it read nothing of what we sent for too long
    TERMINATED = "terminated"    # our user closed it
    EVICTED = "evicted"          # a long-silent plain client made room for a newcomer
    EXITING = "exiting"          # we are exiting (reported only for unsent messages)
    REFUSED = "refused"          # it refused the connection after all (see ``detail``)
    DAMAGED = "damaged"          # the encrypted stream was tampered with or cut (``detail``)
    NO_RECEIPTS = "no receipts"  # it announced delivery and never said what it has of ours


class Refusal(enum.Enum):
    """Why a connection was refused, by us or by the other side: the reasons of a
    ``REFUSE`` line on the wire (the values are its words)."""

    SELF = "self"                # that is this very process
    DUPLICATE = "duplicate"      # already connected to that peer
    FULL = "full"                # the table is at --max-peers
    BUSY = "busy"                # that address already holds its share of the table
    VERSION = "version"          # no protocol version in common
    MALFORMED = "malformed"      # the hello broke the wire format
    UNTRUSTED = "untrusted"      # --trusted-only: not an identity we trust
    DOWNGRADE = "downgrade"      # a trusted peer's address, offered without encryption
    NOT_EXPECTED = "unexpected"  # we dialled it for one identity (its announcement, our
                                 # user's "connect <name>") and it proved another


class Declined(enum.Enum):
    """Why a verb of the node said no (see :class:`Refused`); never on the wire."""

    SELF = "self"                # connect: that is this very process
    DUPLICATE = "duplicate"      # connect: already connected to it (see ``peer_id``)
    FULL = "full"                # connect: the table is at --max-peers (see ``limit``)
    ADDRESS = "address"          # connect: the address cannot be used (see ``address``)
    CONNECTING = "connecting"    # connect: another connect is still in flight
    NO_SOCKET = "no socket"      # connect: the system gives us no socket (see ``errno``)
    UNKNOWN_PEER = "unknown peer"    # connect <name|ID>: nobody trusted or nearby is that
    NO_ADDRESS = "no address"    # connect <name|ID>: known, but not where (see ``detail``)
    BAD_NAME = "bad name"        # set_name: not a name (see ``problem`` and ``detail``)


class AddressProblem(enum.Enum):
    """Why a text is not an address we can connect to or listen on."""

    BAD_NUMBER = "bad number"      # digits and dots, but not four numbers 0-255
    NOT_AN_ADDRESS = "not an address"
    UNKNOWN_HOST = "unknown host"  # a name the resolver does not know
    UNUSABLE = "unusable"          # 0.0.0.0, ::, a broadcast or multicast address: no peer has it


class NameProblem(enum.Enum):
    """Why a text is not a name (the rule is in ``network.names``)."""

    EMPTY = "empty"
    TOO_LONG = "too long"        # more than 32 characters
    CHARACTER = "character"      # a character that is not allowed (see ``detail``)
    DIGITS = "digits"            # all digits: it would read as a connection id
    RESERVED = "reserved"        # "all"


class HelloProblem(enum.Enum):
    """What is wrong with a hello we refused (the words are the console's)."""

    NOT_CHAT = "not chat"                  # not a chat protocol hello at all
    VERSION = "version"                    # a version we do not speak
    NOT_KEY_VALUE = "not key=value"        # a field without "="
    TWICE = "twice"                        # ``field`` appears twice
    MISSING = "missing"                    # ``field`` is missing
    NOT_A_NUMBER = "not a number"          # ``field`` is not ASCII digits
    OUT_OF_RANGE = "out of range"          # ``field`` is ``value``, out of its range
    NODE_ID = "node id"                    # node is not 16 hex digits
    CERT_ALONE = "cert alone"              # a certificate hello with other fields
    KNOCK_ALONE = "knock alone"            # a knock with other fields, or not knock=1
    CERT_NOT_BASE64 = "cert not base64"
    CERT_EMPTY = "cert empty"
    ENDLESS = "endless"                    # a first line longer than any line may be
    FULL_HELLO_EXPECTED = "full expected"  # inside TLS, or after our answer, anything else
    CERT_MISPLACED = "cert misplaced"      # a certificate where none belongs


@dataclass(frozen=True)
class HelloFault:
    problem: HelloProblem
    field: str = ""              # the field it is about (peer text: sanitise it)
    value: int = 0               # for OUT_OF_RANGE


class Failure(enum.Enum):
    """Why a connect we started did not produce a connection."""

    REFUSED_BY_PEER = "refused"  # a chat.py peer answered REFUSE (see ``refusal``)
    REFUSED_BY_US = "declined"   # it answered, and our rules refuse it (see ``refusal``)
    NETWORK = "network"          # TCP failed: see ``errno``
    TIMED_OUT = "timed out"      # no answer within --connect-timeout
    CLOSED = "closed"            # it accepted, then closed without a word
    HANDSHAKE = "handshake"      # it started our handshake and never finished it
    CANCELLED = "cancelled"      # our user cancelled it
    TLS = "tls"                  # the TLS handshake failed (see ``detail``)
    LOOKUP = "lookup"            # the name could not be looked up (``detail``: the resolver's words)
    ADDRESS = "address"          # it names no address we can use (see ``refusal`` for SELF)


@dataclass(frozen=True)
class Lost:
    """How an established connection ended."""

    reason: CloseReason
    errno: int | None = None     # for RESET
    silent_s: float = 0.0        # for TIMED_OUT and STALLED
    unsent: int = 0              # messages still in our buffer, never sent
    detail: str = ""             # for REFUSED and DAMAGED: the words (peer text: sanitise it)


@dataclass(frozen=True)
class ConnectFailed:
    """How a connect we started failed."""

    failure: Failure
    errno: int | None = None
    refusal: Refusal | None = None   # for REFUSED_BY_PEER
    limit: int = 0                   # for FULL / BUSY refusals
    detail: str = ""                 # extra words from the peer's REFUSE (sanitise)
    fault: HelloFault | None = None  # for HANDSHAKE: what was wrong with its hello
    timeout_s: float = 0.0


class Refused(Exception):
    """A verb of the node said no. Carries the reason; never words for a user."""

    def __init__(self, reason: Declined, *, peer_id: int = 0, limit: int = 0,
                 errno: int | None = None, detail: str = "",
                 problem: NameProblem | None = None,
                 address: AddressProblem | None = None) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.peer_id = peer_id      # DUPLICATE: our id of the existing connection
        self.limit = limit          # FULL: the limit
        self.errno = errno          # NO_SOCKET: why
        self.detail = detail        # BAD_NAME: the character refused, if any
        self.problem = problem      # BAD_NAME: what is wrong with the name
        self.address = address      # ADDRESS: what is wrong with the address


class TrustProblem(enum.Enum):
    BAD_NAME = "bad-name"
    NAME_TAKEN = "name-taken"          # another identity has that name
    UNKNOWN_NAME = "unknown-name"
    BAD_ADDRESS = "bad-address"
    BAD_ID = "bad-id"
    MALFORMED = "malformed"            # a line of the file that is not "ID name [address]"
    DUPLICATE = "duplicate"            # a second line for the same ID or name
    UNWRITABLE = "unwritable"
    NO_IDENTITY = "no-identity"        # that connection proves no identity (plain)


class TrustError(Exception):
    def __init__(self, problem: TrustProblem, detail: str = "") -> None:
        super().__init__(f"{problem.value}: {detail}")
        self.problem = problem
        self.detail = detail


class IdentityProblem(enum.Enum):
    OPENSSL_MISSING = "openssl-missing"      # no openssl command on PATH
    OPENSSL_FAILED = "openssl-failed"        # it ran and failed (detail: its last words)
    HOME_UNWRITABLE = "home-unwritable"      # cannot create the home or write in it
    DAMAGED = "damaged"                      # an identity is there but unreadable


class IdentityUnavailable(Exception):
    def __init__(self, problem: IdentityProblem, detail: str) -> None:
        super().__init__(f"{problem.value}: {detail}")
        self.problem = problem
        self.detail = detail


class Posted(enum.Enum):
    """What became of a message handed to ``send`` (its ``done`` says which, once)."""

    WRITTEN = "written"        # in the connection's buffer; a delivery peer acknowledges later
    QUEUED = "queued"          # not connected: in the outbox, sent when the peer is back
    LOST = "lost"              # the connection ended first, and nobody can resend it


@dataclass(frozen=True)
class Recipient:
    """Whom messages of ours are for: an identity's conversation, or one connection's."""

    name: str | None                # the name our user trusts it as (or its announced name)
    info: PeerInfo | None = None    # its connection, when one is (or was last) open
    address: tuple[str, int] | None = None   # else where it was last seen, if anywhere


@dataclass(frozen=True)
class Nearby:
    """A chat.py heard announcing itself on the local network (its claims, not proof)."""

    name: str | None            # what it calls itself
    fingerprint: bytes          # the identity it claims (TLS checks it on connecting)
    host: str                   # where its announcement came from
    port: int                   # where it says it listens
    age_s: float                # since it was last heard
    trusted_name: str | None    # our user's name for that identity, if trusted

    @property
    def address(self) -> str:
        return join_host_port(self.host, self.port)


@dataclass(frozen=True)
class Undelivered:
    """Messages of ours not acknowledged (yet): ``queued`` stay in the outbox for later."""

    recipient: Recipient
    count: int
    queued: bool


@dataclass(frozen=True)
class Record:
    """One message as the history keeps it."""
    at: float
    direction: str          # "<": it came to us, ">": we sent it
    fingerprint: bytes | None
    name: str | None        # the name it went by then (trusted name first)
    address: str
    key: str                # "<stream>:<seq>" of a numbered message, else ""
    state: str              # OUT: queued, sent, delivered, failed; IN: ""
    text: str

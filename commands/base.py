"""What a command is, what it may touch, and how it reports a mistake.

A command is a small object that declares its name, usage and one-line
summary *as data* (so ``help`` and usage errors come from one place and
survive ``python -OO``) and implements ``run(ctx, args)``. It sees the node
only through :class:`NodeAPI` and writes only through ``ctx.console``.

Commands never import ``reactor`` or the network's machinery: the node
arrives through the context and is typed structurally (:class:`NodeAPI`,
and :class:`TrustedEntry` for what it says about trusted identities); only
the network's vocabulary (``network.outcomes``, ``PeerInfo`` among it) is
shared.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

from network.outcomes import Nearby, PeerInfo, Posted, Record, split_host_port

from . import words

if TYPE_CHECKING:
    from .console import Console
    from .registry import CommandRegistry


class CommandError(Exception):
    """A user mistake or a refusal: shown as one ``error:`` line."""


class UsageError(CommandError):
    """Wrong arguments: the registry adds the command's usage to the message."""


class TrustedEntry(Protocol):
    """An identity our user trusts, as the node reports it (``network.trust.TrustedPeer``
    is one: the commands may not import it, so it is described by its shape)."""

    @property
    def fingerprint(self) -> bytes: ...
    @property
    def name(self) -> str: ...              # our user's name for it
    @property
    def address(self) -> tuple[str, int] | None: ...   # where it was last seen
    @property
    def id(self) -> str: ...                # its ID, written for people


class NodeAPI(Protocol):
    """The verbs the user side may use (``network.node.Node`` implements them): the
    commands', and the session's ``shutdown`` and ``cancel_connect``.

    Refusals come as ``network.outcomes.Refused`` (the only part of the
    network the commands import: its vocabulary).
    """

    @property
    def port(self) -> int: ...      # the port we listen on (read only)
    name: str | None

    def my_ip(self) -> str: ...
    def my_ipv6(self) -> str | None: ...
    def peers(self) -> list[PeerInfo]: ...
    def peer(self, peer_id: int) -> PeerInfo | None: ...
    def peer_at(self, host: str, port: int) -> PeerInfo | None: ...
    def connect(self, host: str, port: int, done: Callable[[bool], None]
                ) -> tuple[str, int]: ...
    def connect_to(self, who: str, done: Callable[[bool], None]
                   ) -> tuple[str, int, int]: ...    # (address, reserved id, port)
    def nearby(self) -> list[Nearby]: ...
    def trust_id(self, text: str, name: str) -> TrustedEntry: ...
    def cancel_connect(self) -> tuple[str, int] | None: ...
    def terminate(self, peer_id: int) -> PeerInfo: ...
    def send(self, peer_id: int, text: str, done: Callable[[Posted], None]) -> None: ...
    def send_to_trusted(self, name: str, text: str, done: Callable[[Posted], None]
                        ) -> Posted | None: ...
    def trusted_named(self, name: str) -> TrustedEntry | None: ...
    def history(self, count: int, fingerprint: bytes | None = None, name: str | None = None,
                address: str | None = None) -> list[Record]: ...
    def my_id(self) -> str | None: ...
    def short_id(self, fingerprint: bytes) -> str: ...
    def trust_peer(self, peer_id: int, name: str | None) -> TrustedEntry: ...
    def untrust(self, name: str) -> TrustedEntry: ...
    def trusted(self) -> Sequence[TrustedEntry]: ...
    def send_to_all(self, text: str, done: Callable[[int, list[PeerInfo]], None]) -> None: ...
    def set_name(self, name: str | None) -> int: ...
    def shutdown(self, done: Callable[[int], None]) -> int: ...


@dataclass
class Context:
    """Everything a running command may use."""

    node: NodeAPI
    console: Console
    registry: CommandRegistry
    # Returns a function that releases the command queue: call ``hold()`` when
    # the command finishes later (a connect in flight, a send that waits).
    hold: Callable[[], Callable[[], None]]
    request_exit: Callable[[], None]


class Command:
    name: str = ""
    aliases: tuple = ()    # other words for it ("quit" for "exit")
    usage: str = ""        # the arguments, e.g. "<id> <message>"
    summary: str = ""      # one line for `help`
    details: str = ""      # more, for `help <name>`
    min_args: int = 0
    max_args: int = 0
    rest_of_line: bool = False   # the last argument takes the rest of the line as typed
    completes_ids: bool = False  # Tab after the name offers the live connection ids and names
    completes_all: bool = False  # ... and "all"
    immediate: bool = False      # only reports: runs even while a connect holds the queue

    @property
    def synopsis(self) -> str:
        return f"{self.name} {self.usage}".rstrip()

    def run(self, ctx: Context, args: list[str]) -> None:
        raise NotImplementedError


def ascii_digits(text: str) -> bool:
    """Digits as a user types an id or a port: ASCII only ("٨" is not one), no sign.

    (The same rule as ``reactor.netutil.maybe_ascii_number``, which the user side may
    not import.)"""
    return text.isascii() and text.isdigit()


def parse_id(text: str) -> int:
    """A connection id as the user typed it, or a :class:`CommandError`."""
    if not ascii_digits(text):
        raise CommandError(words.not_an_id(text))
    return int(text)


def parse_port(text: str) -> int:
    if not ascii_digits(text) or not 0 < int(text) < 65536:
        raise CommandError(words.not_a_port(text))
    return int(text)


def lookup_peer(ctx: Context, text: str) -> PeerInfo:
    """The connection the user means: an id, a name or ``ip:port``, as ``list`` shows them.

    A name must name one connection (compared without regard to case); names
    are labels anyone can announce, so two connections may share one.
    """
    host, port_text = split_host_port(text)
    if port_text is None and not ascii_digits(text):
        return _by_name(ctx, text)
    if port_text is not None:
        info = ctx.node.peer_at(host, parse_port(port_text))
        if info is None:
            raise CommandError(words.no_connection_at(text))
        return info
    peer_id = parse_id(text)
    info = ctx.node.peer(peer_id)
    if info is None:
        raise CommandError(words.no_connection_with_id(peer_id))
    return info


def is_name(text: str) -> bool:
    """Would :func:`lookup_peer` take ``text`` for a name (not an id, not ``ip:port``)?"""
    return ":" not in text and not ascii_digits(text)


def _by_name(ctx: Context, text: str) -> PeerInfo:
    wanted = unicodedata.normalize("NFC", text).casefold()
    peers = ctx.node.peers()
    # The name our user gave an identity is earned by its key: it goes first.
    found = [p for p in peers if p.trusted_name and p.trusted_name.casefold() == wanted]
    if len(found) != 1:
        found = [p for p in peers if p.name is not None and p.name.casefold() == wanted]
    if len(found) == 1:
        return found[0]
    if not found:
        raise CommandError(words.no_connection_named(text))
    raise CommandError(words.ambiguous_name(text, [p.id for p in found]))

"""Every sentence a user reads: the one place outcomes and mistakes become words.

The network side reports Enums and numbers (``network.outcomes``); the
console asks this module how to say them. Anything in them that came from
outside (a peer's refusal words, a malformed hello's detail) passes the
sanitiser here, before it can reach a terminal.

The rest of the user side asks here too: the commands raise
``CommandError(words.something(...))``, the registry, the queue and the session
say their lines with it, and ``chat.py`` its start-up errors. The console only
lays lines out (labels' colours, the time, the prompt, tables); nobody else
composes a sentence (``tests/test_words.py`` checks it). Only help stays where it
is, as data: the commands' ``usage``, ``summary`` and ``details`` (so that ``help``
survives ``python -OO`` and comes from one place) and the option help of
``chat.py``'s argument parser.
"""

from __future__ import annotations

import errno as errnos
import os
from typing import TYPE_CHECKING, Callable

from network.outcomes import (AddressProblem, CloseReason, ConnectFailed, Declined, Direction,
                              Failure, HelloFault, HelloProblem, IdentityProblem,
                              IdentityUnavailable, Lost, NameProblem,
                              PeerInfo, Recipient, Record, Refusal, Refused, TrustError,
                              TrustProblem, Undelivered, join_host_port)

from .sanitize import MAX_SHOWN_CHARS, sanitize

if TYPE_CHECKING:
    from .base import TrustedEntry

_ERRNO_WORDS = {
    errnos.ECONNREFUSED: "connection refused (nothing is listening on that port)",
    errnos.ECONNRESET: "connection reset by peer",
    errnos.EPIPE: "broken pipe",
    errnos.ETIMEDOUT: "timed out",
    errnos.EHOSTUNREACH: "no route to host",
    errnos.ENETUNREACH: "network is unreachable",
    errnos.EADDRNOTAVAIL: "address not available",
    errnos.EMFILE: "too many open files",
    errnos.ENFILE: "too many open files in the system",
}

_ADDRESS_PROBLEMS = {
    AddressProblem.BAD_NUMBER: "not a valid IPv4 address (four numbers from 0 to 255, like "
                               "192.168.1.5)",
    AddressProblem.NOT_AN_ADDRESS: "not an IP address or host name",
    AddressProblem.UNKNOWN_HOST: "unknown host (the resolver does not know that name)",
    AddressProblem.UNUSABLE: "that is not an address a peer can have",
}


def errno_words(code: int | None) -> str:
    if code is None:
        return "the connection failed"
    return _ERRNO_WORDS.get(code) or os.strerror(code)


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 connection``, ``2 connections``: a count and its noun, agreeing."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"


def shorten(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how many more there were."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} [cut: {len(text) - limit} more characters]"


def peer(info: PeerInfo) -> str:
    """How a connection is named everywhere: ``peer 3 alice (10.0.0.7:9090)``.

    ``alice`` is what it calls itself: a label, not proof. A peer whose identity
    our user trusts carries the name our user gave it instead, which only its key
    can earn, marked so: ``peer 2 =alice= (10.0.0.7:9090)``.
    """
    address = info.address
    trusted = info.trusted_name
    if trusted:
        return f"peer {info.id} ={sanitize(trusted)}= ({address})"
    if info.name is None:
        return f"peer {info.id} ({address})"
    return f"peer {info.id} {sanitize(info.name)} ({address})"


def security(info: PeerInfo, short_id: Callable[[bytes], str]) -> str:
    """The list's trust column: plain, encrypted, or our name for the identity."""
    if not getattr(info, "fingerprint", None):
        return "plain"
    ident = short_id(info.fingerprint)
    trusted = getattr(info, "trusted_name", None)
    return f"={sanitize(trusted)}= {ident}" if trusted else f"encrypted {ident}"


NAME_RULE = ('a name is 1 to 32 letters or digits (any script), "-", "_" or ".", '
             'not all digits and not "all"')


def bad_name(text: str, refused: Refused) -> str:
    """Why ``text`` cannot be our name."""
    problem, char = refused.problem, refused.detail
    if problem is NameProblem.CHARACTER:
        what = "a space" if char == " " else f'"{sanitize(char)}"'
        why = f"it contains {what}"
    else:
        why = {NameProblem.EMPTY: "it is empty", NameProblem.TOO_LONG: "it is too long",
               NameProblem.DIGITS: "it is all digits (that reads as an id)",
               NameProblem.RESERVED: 'it is "all" (send all means everyone)'}.get(problem, "")
    return f'"{shorten(sanitize(text), 40)}" cannot be a name: {why}; {NAME_RULE}'


def renamed(before: PeerInfo, after: PeerInfo) -> str:
    if after.name is None:
        return f"{peer(before)} no longer has a name"
    return f"{peer(before)} is now known as {sanitize(after.name)}"


def refused_name(info: PeerInfo, text: str) -> str:
    return (f'{peer(info)} announced "{sanitize(text)}" as its name; that is not a name, so '
            f"it is shown without one")


def sent_to_all(count: int, missed: list[PeerInfo]) -> str:
    """The one confirmation of ``send all`` (before the text)."""
    if not missed:
        return f"sent to {plural(count, 'connection')}:"
    who = ", ".join(peer(info) for info in missed[:3])
    if len(missed) > 3:
        who += f" and {len(missed) - 3} more"
    closed = "it closed first" if len(missed) == 1 else "they closed first"
    return f"sent to {count - len(missed)} of {plural(count, 'connection')} (not to {who}: {closed}):"


def address_problem(problem: AddressProblem) -> str:
    return _ADDRESS_PROBLEMS[problem]


def declined_reason(refused: Refused) -> str:
    """Why our node would not even try (a verb's :class:`Refused`)."""
    reason = refused.reason
    if reason is Declined.SELF:
        return "that is this peer itself"
    if reason is Declined.DUPLICATE:
        return f"already connected to it as peer {refused.peer_id}"
    if reason is Declined.FULL:
        return f"already at the limit of {plural(refused.limit, 'connection')} (see --max-peers)"
    if reason is Declined.ADDRESS:
        return address_problem(refused.address)
    if reason is Declined.CONNECTING:
        return "another connect is still in progress"
    if reason is Declined.NO_SOCKET:
        return f"no socket to be had ({errno_words(refused.errno)})"
    if reason is Declined.UNKNOWN_PEER:
        if refused.limit:
            return (f"{refused.limit} identities nearby call themselves that; use the ID "
                    "(see \"nearby\")")
        return ("nobody you trust has that name, and no chat.py nearby announces it "
                "(see \"trust\" and \"nearby\")")
    if reason is Declined.NO_ADDRESS:
        return ("not heard on the local network lately, and never seen at an address; "
                "use connect <ip> <port>")
    return reason.value


def refusal_reason(refusal: Refusal | None, limit: int = 0, detail: str = "",
                   ours: bool = True) -> str:
    """Why a connection cannot be (``ours``: our own rules refused it; else: what the
    peer said, in its ``REFUSE``)."""
    if refusal is Refusal.SELF:
        return "that is this peer itself"
    if refusal is Refusal.DUPLICATE:
        return "it is already connected to you"
    if refusal is Refusal.FULL:
        if ours:
            return f"already at the limit of {plural(limit, 'connection')} (see --max-peers)"
        return f"that peer is full ({plural(limit, 'connection')})" if limit else \
            "that peer is full"
    if refusal is Refusal.BUSY:
        return (f"that peer takes no more connections from your address (at most {limit})"
                if limit else "that peer takes no more connections from your address")
    if refusal is Refusal.VERSION:
        return f"it speaks another version of the chat protocol ({sanitize(detail)})"
    if refusal is Refusal.MALFORMED:
        return "the handshake was malformed"
    if refusal is Refusal.UNTRUSTED:
        return ("it accepts only identities it trusts" if not ours else
                "not an identity you trust (see --trusted-only)")
    if refusal is Refusal.NOT_EXPECTED:
        return ("it is not the identity it was connected for (see the warning)" if ours else
                "it expected another identity at your address")
    if refusal is Refusal.DOWNGRADE:
        return ("a peer you trust is known at that address, and this one offers no "
                "encryption" if ours else "it trusts someone else at your address")
    return f"it refused the connection ({sanitize(detail)})" if detail else \
        "it refused the connection"


def cannot_connect_to(who: str, refused: Refused) -> str:
    return f"cannot connect to {sanitize(who)}: {declined_reason(refused)}"


def cannot_connect(host: str, port: int, refused: Refused) -> str:
    reason = declined_reason(refused)
    return f"cannot connect to {join_host_port(sanitize(host), port)}: {reason}"


def could_not_connect(host: str, port: int, failed: ConnectFailed) -> str:
    failure = failed.failure
    if failure is Failure.REFUSED_BY_PEER:
        reason = refusal_reason(failed.refusal, failed.limit, detail=failed.detail, ours=False)
    elif failure is Failure.REFUSED_BY_US:
        reason = refusal_reason(failed.refusal, failed.limit, detail=failed.detail)
    elif failure is Failure.TIMED_OUT:
        reason = f"timed out (no answer after {failed.timeout_s:g} s)"
    elif failure is Failure.CLOSED:
        reason = "it closed the connection at once"
    elif failure is Failure.HANDSHAKE:
        reason = ("its handshake was malformed" if failed.refusal is Refusal.MALFORMED else
                  refusal_reason(failed.refusal, detail=hello_fault(failed.fault), ours=False)
                  if failed.refusal else "it never finished the handshake")
    elif failure is Failure.CANCELLED:
        reason = "cancelled"
    elif failure is Failure.TLS:
        reason = f"the encrypted handshake failed ({sanitize(failed.detail)})"
    elif failure is Failure.LOOKUP:
        reason = f"cannot find that name ({sanitize(failed.detail)})"
    elif failure is Failure.ADDRESS:
        reason = "that name has no address a peer can have"
    else:
        reason = errno_words(failed.errno)
    return f"could not connect to {join_host_port(host, port)}: {reason}"


def lost(info: PeerInfo, outcome: Lost) -> list[str]:
    """The lines that say a connection ended (and what it took with it)."""
    who = peer(info)
    reason = outcome.reason
    if reason is CloseReason.CLOSED:
        lines = [f"{who} closed the connection"]
    elif reason is CloseReason.LEFT:
        lines = [f"{who} left"]
    elif reason is CloseReason.TIMED_OUT:
        lines = [f"dropped {who}: it stopped answering (no sign of life for "
                 f"{outcome.silent_s:.1f} s)"]
    elif reason is CloseReason.STALLED:
        lines = [f"dropped {who}: it stopped reading (it read nothing for "
                 f"{outcome.silent_s:.1f} s)"]
    elif reason is CloseReason.EVICTED:
        lines = [f"dropped {who} to make room for a new connection (it had been silent for "
                 f"{outcome.silent_s / 60:.0f} min)"]
    elif reason is CloseReason.REFUSED:
        lines = [f"{who} refused the connection ({sanitize(outcome.detail)})"]
    elif reason is CloseReason.NO_RECEIPTS:
        lines = [f"dropped {who}: it promised receipts but never said what it has of ours "
                 f"(in {outcome.silent_s:.1f} s)"]
    elif reason is CloseReason.DAMAGED:
        lines = [f"dropped {who}: its encrypted stream was damaged or cut "
                 f"({sanitize(outcome.detail)}); nothing of the damaged part was shown"]
    elif reason in (CloseReason.TERMINATED, CloseReason.EXITING):
        lines = []
    else:
        lines = [f"lost the connection to {who}: {errno_words(outcome.errno)}"]
    if outcome.unsent:
        verb = "was" if outcome.unsent == 1 else "were"
        lines.append(f"{plural(outcome.unsent, 'message')} to {who} {verb} not sent")
    return lines


def refused_incoming(address: str | None, refusal: Refusal, count: int, limit: int) -> str:
    why = {Refusal.FULL: f"already at the limit of {plural(limit, 'connection')} "
                         f"(see --max-peers)",
           Refusal.BUSY: f"that address already has {plural(limit, 'connection')} "
                         f"(see --max-per-address)"}.get(refusal, refusal.value)
    if address is not None:
        return f"refused a connection from {address}: {why}"
    return f"refused {plural(count, 'more connection')} in the last second: {why}"


_HELLO_FAULTS = {
    HelloProblem.NOT_CHAT: "not a chat hello",
    HelloProblem.VERSION: "version",
    HelloProblem.NOT_KEY_VALUE: "a field is not key=value",
    HelloProblem.TWICE: "{field} appears twice",
    HelloProblem.MISSING: "{field} is missing",
    HelloProblem.NOT_A_NUMBER: "{field} is not a number",
    HelloProblem.OUT_OF_RANGE: "{field} {value} is out of range",
    HelloProblem.NODE_ID: "node is not 16 hex digits",
    HelloProblem.CERT_ALONE: "cert comes alone",
    HelloProblem.KNOCK_ALONE: "knock=1 comes alone",
    HelloProblem.CERT_NOT_BASE64: "cert is not base64",
    HelloProblem.CERT_EMPTY: "cert is empty",
    HelloProblem.ENDLESS: "an endless first line",
    HelloProblem.FULL_HELLO_EXPECTED: "expected a full hello",
    HelloProblem.CERT_MISPLACED: "a certificate where none belongs",
}


def hello_fault(fault: HelloFault | None) -> str:
    """What was wrong with a hello we refused, in a few words (its field made safe)."""
    if fault is None:
        return ""
    return _HELLO_FAULTS[fault.problem].format(field=sanitize(fault.field), value=fault.value)


def bad_hello(address: str, refusal: Refusal, fault: HelloFault) -> str:
    what = ("speaks another version of the chat protocol" if refusal is Refusal.VERSION
            else f"sent a malformed hello ({hello_fault(fault)})")
    return f"refused a connection from {address}: it {what}"


def identity_changed(address: str, trusted: TrustedEntry, shown_id: str | None) -> list[str]:
    """SSH's warning, in our words: a trusted peer's address answers with another key."""
    now = f"ID {shown_id}" if shown_id else "no identity at all (plain)"
    return [f"WARNING: IDENTITY CHANGED for {sanitize(trusted.name)} at {address}!",
            f"  you trust {sanitize(trusted.name)} as ID {trusted.id}; this peer shows {now}.",
            "  It may be a new key, or someone in the middle. It is NOT shown as trusted;",
            f"  check the ID with {sanitize(trusted.name)} out of band, then \"untrust "
            f"{sanitize(trusted.name)}\" and \"trust\" it again if it is right."]


def untrusted_refused(address: str, refusal: Refusal) -> str:
    return f"refused a connection from {address}: {refusal_reason(refusal)}"


def trust_problem(exc: TrustError, info: PeerInfo | None = None) -> str:
    problem = exc.problem
    if problem is TrustProblem.NO_IDENTITY:
        who = peer(info) if info is not None else "that connection"
        return f"{who} is not encrypted: it proves no identity, so it cannot be trusted"
    if problem is TrustProblem.BAD_NAME:
        if not exc.detail:
            return "it announces no name: give it one, trust <id> <name>"
        return (f'"{sanitize(exc.detail)}" cannot be a name: 1 to 32 letters, digits, "-", "_" '
                f'or "."')
    if problem is TrustProblem.NAME_TAKEN:
        return f'"{sanitize(exc.detail)}" already names another identity; pick another name'
    if problem is TrustProblem.UNKNOWN_NAME:
        return f'you trust nobody named "{sanitize(exc.detail)}"; type "trust" to see whom'
    if problem is TrustProblem.UNWRITABLE:
        return f"cannot save the trust file ({sanitize(exc.detail)})"
    return f"trust file problem: {problem.value} ({sanitize(exc.detail)})"


def identity_unavailable(exc: IdentityUnavailable) -> str:
    why = {IdentityProblem.OPENSSL_MISSING: "the openssl command, which makes the key, was "
                                            "not found",
           IdentityProblem.OPENSSL_FAILED: f"openssl failed: {sanitize(exc.detail)}",
           IdentityProblem.HOME_UNWRITABLE: f"cannot write there: {sanitize(exc.detail)}",
           IdentityProblem.DAMAGED: f"the identity files are damaged: {sanitize(exc.detail)}"
           }[exc.problem]
    return f"no identity ({why}); connections will not be encrypted"


# -- what the node reports, beyond the above (the console's observer) ------------------

def listening(host: str, port: int) -> str:
    every = " (every address, IPv4 and IPv6)" if host == "::" else ""
    return f'listening on {join_host_port(host, port)}{every}; type "help" for commands'


def connected(info: PeerInfo) -> str:
    """A connection is established: with whom, who opened it, and whether it is chat.py."""
    if info.direction is Direction.OUTGOING:
        text = f"connected to {peer(info)}"
        if not info.speaks_protocol:
            text += " (it is not chat.py: it gets your messages as plain lines)"
    else:
        text = f"{peer(info)} connected to you"
        if not info.speaks_protocol:
            text += " (a plain TCP client, not chat.py; the port is its own)"
    return text


def upgraded(info: PeerInfo) -> str:
    return f"{peer(info)} is chat.py after all (its hello came late)"


def already_connected(info: PeerInfo) -> str:
    return f"already connected to {info.address} as peer {info.id}"


def message_from(info: PeerInfo) -> str:
    """The label of every message a peer sent (its text follows, sanitised)."""
    return f"message from {peer(info)}:"


def line_too_long(info: PeerInfo, limit: int) -> str:
    return f"{peer(info)} sent a line longer than {limit} bytes; it was discarded"


def connecting(host: str, port: int, peer_id: int, cancellable: bool) -> str:
    """``cancellable``: at a terminal, where Ctrl-C gives the connect up."""
    hint = " (Ctrl-C to cancel)" if cancellable else ""
    return f"connecting to {join_host_port(host, port)} as peer {peer_id} ...{hint}"


def connect_cancelled(host: str, port: int) -> str:
    return f"cancelled the connection to {join_host_port(host, port)}"


def accept_paused(errno: int | None, retry_s: float) -> str:
    return (f"cannot accept new connections for now ({errno_words(errno)}); "
            f"trying again in {retry_s:g} s")


# -- what the commands answer ----------------------------------------------------------

def sent_to(info: PeerInfo) -> str:
    """The label of a confirmed ``send`` (the text follows)."""
    return f"sent to {peer(info)}:"


def sent_to_nobody(count: int) -> str:
    """``send all`` when every one of the ``count`` connections closed before it had it."""
    return f"the message was not sent: {plural(count, 'connection')} closed first"


def not_sent(peer_id: int) -> str:
    return f"message to peer {peer_id} was not sent: the connection closed first"


NOBODY_TO_SEND_TO = 'no connections to send to; open one with "connect <ip> <port>"'


# -- delivery --------------------------------------------------------------------------

def recipient(whom: Recipient) -> str:
    """Whom messages are for: the connection if one is open, else our name for it."""
    if whom.info is not None and whom.info.id:
        return peer(whom.info)
    if whom.name:
        return sanitize(whom.name)
    if whom.address is not None:
        return f"the peer last seen at {join_host_port(*whom.address)}"
    return "that peer"


def queued_for(name: str) -> str:
    """A ``send`` to a trusted identity that is not connected (the text follows)."""
    return f"queued for {sanitize(name)} (not connected; sent when it is):"


def delivered(whom: Recipient, count: int = 1) -> str:
    """Messages that had waited are acknowledged (the text of the last follows)."""
    if count == 1:
        return f"delivered to {recipient(whom)}:"
    return f"delivered to {recipient(whom)}: {count} messages that had waited, the last:"


def undelivered(what: Undelivered) -> str:
    count = plural(what.count, "message")
    who = recipient(what.recipient)
    if what.queued:
        pronoun = "it stays" if what.count == 1 else "they stay"
        return f"{count} to {who} not yet delivered; {pronoun} queued for the next connection"
    verb = "was" if what.count == 1 else "were"
    return f"{count} to {who} {verb} not delivered: the connection ended (no identity to resend to)"


def reconnecting(whom: Recipient, address: tuple[str, int]) -> str:
    return (f"reconnecting to {recipient(whom)} at {join_host_port(*address)} "
            f"(by itself, less often as it fails)")


def store_problem(problem: str, detail: str) -> str:
    detail = sanitize(detail)
    if problem == "corrupt":
        return f"the message store was damaged and was moved aside ({detail}); starting a new one"
    if problem == "history":
        return f"cannot write the history ({detail}); it is kept in memory from now on"
    return f"cannot use the message store ({detail}); messages are kept in memory from now on"


def discovery_junk(count: int) -> str:
    return (f"ignored {plural(count, 'datagram')} at the discovery port that "
            f"{'was not an announcement' if count == 1 else 'were not announcements'}")


NEARBY_HEADINGS = ("name", "ID", "address", "heard", "trusted")


def claims(trusted_name: str) -> str:
    """An announcement's ID is a claim until TLS proves it (connect checks it)."""
    return f"claims ={sanitize(trusted_name)}="
NOBODY_NEARBY = ("nobody heard on the local network in the last 90 s "
                 "(chat.py peers announce themselves every 30 s)")


def age(seconds: float) -> str:
    return f"{int(seconds)} s ago"


HISTORY_STATES = {"sent": "sent", "queued": "queued", "delivered": "delivered",
                  "failed": "not delivered"}
NO_HISTORY = "no messages in the history yet"


def history_line(record: Record, when: str) -> str:
    """One message of ``history``: time, direction, whom, text, and its state for ours."""
    whom = sanitize(record.name) if record.name else record.address
    text = shorten(sanitize(record.text))
    if record.direction == "<":
        return f"{when}  from {whom}: {text}"
    state = HISTORY_STATES.get(record.state, sanitize(record.state))
    if not record.key and record.state == "sent":
        state = "sent, no receipts"      # a plain client or an older chat.py
    return f"{when}  to {whom}: {text}  [{state}]"


def history_empty_for(text: str) -> str:
    return f'no messages with "{sanitize(text)}" in the history'


def terminated(info: PeerInfo) -> str:
    return f"closed the connection to {peer(info)}"


NO_CONNECTIONS = 'no connections; open one with "connect <ip> <port>"'
# The head of the ``list`` table; ``name_column``, ``who_connected`` and ``security``
# fill its columns.
PEER_TABLE_HEADINGS = ("id", "name", "address", "connection", "trust")


def name_column(info: PeerInfo) -> str:
    return "-" if info.name is None else sanitize(info.name)


def who_connected(info: PeerInfo) -> str:
    """The list's connection column: who opened it, and whether it is chat.py."""
    how = "you connected" if info.direction is Direction.OUTGOING else "it connected"
    if not info.speaks_protocol:
        how += ", not chat.py"
    return how


def trusted(info: PeerInfo, entry: TrustedEntry) -> str:
    return f"you trust {peer(info)} as {sanitize(entry.name)} (ID {entry.id})"


def trusted_id(entry: TrustedEntry) -> str:
    return (f"you trust {sanitize(entry.name)} (ID {entry.id}); "
            f"\"connect {sanitize(entry.name)}\" once it is nearby, or it connects to you")


TRUST_ID_NEEDS_NAME = "give the ID a name: trust <ID> <name>"


def untrusted(entry: TrustedEntry) -> str:
    return f"you no longer trust {sanitize(entry.name)} (ID {entry.id})"


NOBODY_TRUSTED = 'you trust nobody yet; "trust <id> <name>" trusts a connected peer'


def last_seen(address: tuple[str, int]) -> str:
    return f"last seen at {join_host_port(*address)}"


NO_IDENTITY = "no identity: connections are not encrypted (see the start-up notice)"


def your_id(my_id: str) -> str:
    return f"your ID: {my_id}"


def my_ip(ip: str, loopback_only: bool, ipv6: str | None = None) -> str:
    """``loopback_only``: the machine has no other address, so nobody else can reach it.
    ``ipv6``: its routed IPv6 address, when it has one (a second line)."""
    hint = (" (this machine has no network address besides loopback: no other "
            "machine can reach this peer)") if loopback_only and ipv6 is None else ""
    text = f"IP address: {ip}{hint}"
    return text + f"\nIPv6 address: {ipv6}" if ipv6 else text


def listening_port(port: int) -> str:
    return f"listening port: {port}"


NO_NAME_OF_YOURS = 'you have no name; set one with "name <name>"'


def your_name(name: str) -> str:
    return f"your name: {sanitize(name)}"


def now_known_as(name: str, told: int) -> str:
    """``told``: how many chat.py peers were told the new name."""
    also = f" (told {plural(told, 'chat.py peer')})" if told else ""
    return f"you are now known as {sanitize(name)}{also}"


# -- what the user got wrong -------------------------------------------------------------

def not_an_id(text: str) -> str:
    return (f'"{sanitize(text)}" is not a connection id; ids are the numbers '
            f'that "list" shows')


def not_a_port(text: str) -> str:
    return f'"{sanitize(text)}" is not a port; a port is a number from 1 to 65535'


def no_connection_at(text: str) -> str:
    """No connection to the peer listening at ``text`` (``ip:port``)."""
    return f'no connection with {sanitize(text)}; type "list" to see the connections'


def no_connection_with_id(peer_id: int) -> str:
    return f'no connection with id {peer_id}; type "list" to see the connections'


def no_connection_named(text: str) -> str:
    return (f'no connection with id or name "{sanitize(text)}"; type "list" to see the '
            f'connections')


def ambiguous_name(text: str, ids: list[int]) -> str:
    """Several connections announce the name ``text``."""
    return (f'"{sanitize(text)}" names {len(ids)} connections '
            f'(ids {", ".join(map(str, ids))}); use an id')


EMPTY_MESSAGE = "empty message"


def message_too_long(length: int, limit: int) -> str:
    return f"message is {length} characters long; the limit is {limit} (nothing was sent)"


def control_character(shown: str) -> str:
    """``shown``: the first character refused, escaped."""
    return f"messages cannot contain control characters (found {shown}); nothing was sent"


# -- the registry: mistakes in a command line, and help ------------------------------------

def unknown_command(name: str, suggestion: str | None) -> str:
    """``suggestion``: a command whose name is close to ``name``, if there is one."""
    shown = name if len(name) <= 30 else name[:30] + "..."
    hint = f'did you mean "{suggestion}"? ' if suggestion else ""
    return f'unknown command "{shown}"; {hint}type "help" to see the commands'


def needs_more_arguments(command: str) -> str:
    return f'"{command}" needs more arguments'


def takes_no_arguments(command: str) -> str:
    return f'"{command}" takes no arguments'


def takes_at_most(command: str, count: int) -> str:
    return f'"{command}" takes at most {plural(count, "argument")}'


def with_usage(message: str, synopsis: str) -> str:
    """A usage error: what was wrong, then how the command is typed."""
    return f"{message}; usage: {synopsis}"


HELP_HEADING = "commands:"
HELP_FOOTER = 'type "help <command>" for more about one command'


def usage(synopsis: str) -> str:
    return f"usage: {synopsis}"


def also(aliases) -> str:
    """The other words for a command (``quit`` for ``exit``)."""
    return f"also: {', '.join(aliases)}"


# -- input, and the way out ----------------------------------------------------------------

def input_line_too_long(nbytes: int) -> str:
    return f"input line too long ({nbytes} bytes or more); it was ignored"


def invalid_utf8(byte: int) -> str:
    return f"input is not valid UTF-8 (byte 0x{byte:02x}); the line was ignored"


def internal_error_running(command: str, exc: Exception) -> str:
    """A bug in a command (``command``: the first word of its line), said in one line."""
    return f"internal error while running {command!r}: {type(exc).__name__}: {exc}"


STAYING = "end of input; still running because of --stay (stop with Ctrl-C or SIGTERM)"


def exiting(count: int) -> str:
    """``count``: the connections being closed."""
    return f"exiting: closing {plural(count, 'connection')}" if count else "exiting"


def output_unwritten(nbytes: int) -> str:
    return f"{nbytes} bytes of output could not be written: stdout is not being read"


def output_failed(exc: OSError) -> str:
    return f"could not write to stdout: {exc.strerror or os.strerror(exc.errno or 0)}"


# -- start-up (chat.py) ----------------------------------------------------------------------

def invalid_port(text: str) -> str:
    return f"invalid port {text!r}: use a number from 1 to 65535 (0 picks a free port)"


def invalid_duration(text: str) -> str:
    return f"invalid duration {text!r}: use a number of seconds greater than 0"


def invalid_number(text: str, least: int) -> str:
    return f"invalid number {text!r}: use a whole number >= {least}"


def invalid_address(text: str, problem: AddressProblem) -> str:
    return f"invalid address {text!r}: {address_problem(problem)}"


def cannot_listen(exc: OSError, host: str, port: int) -> str:
    if exc.errno == errnos.EADDRINUSE:
        return f"port {port} is already in use; pick another port, or 0 for any free one"
    if exc.errno == errnos.EACCES:
        return f"not allowed to listen on port {port} (ports below 1024 need root)"
    if exc.errno == errnos.EADDRNOTAVAIL:
        return f"cannot listen on {host}: no interface of this machine has that address"
    return f"cannot listen on {join_host_port(host or '::', port)}: {exc.strerror or exc}"


def trust_file_unreadable(path, detail: str) -> str:
    return f"cannot read {path} ({sanitize(detail)}); nobody is trusted in this run"


def trust_line_skipped(path, number: int, problem: TrustProblem) -> str:
    """A line of the trust file (``path``) that is not understood, and is kept."""
    return f"{path}, line {number}: not understood ({problem.value}); left as it is"


NO_WINDOWS = ("Windows is not supported (select() there works on sockets only, not on the "
              "console); use WSL")


def internal_error(exc: Exception) -> str:
    return f"internal error: {type(exc).__name__}: {exc}"

"""Sentences for what the network reports: the one place outcomes become words.

The network side reports Enums and numbers (``network.outcomes``); the
console asks this module how to say them. Anything in them that came from
outside (a peer's refusal words, a malformed hello's detail) passes the
sanitiser here, before it can reach a terminal.
"""

from __future__ import annotations

import errno as errnos
import os

from network.outcomes import (CloseReason, ConnectFailed, Failure, Lost, NameProblem, Refusal,
                              Refused)

from .sanitize import sanitize, shorten

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
    "ipv6": "that is an IPv6 address; only IPv4 is supported for now",
    "bad number": "not a valid IPv4 address (four numbers from 0 to 255, like 192.168.1.5)",
    "not an address": "not an IP address",
    "unknown host": "unknown host; use a numeric IPv4 address such as 192.168.1.5 (names are "
                    "looked up only in /etc/hosts, never in DNS)",
    "unusable": "that is not an address a peer can have",
}


def plural(count: int, one: str, many: str | None = None) -> str:
    """``1 message``, ``2 messages``."""
    return f"{count} {one if count == 1 else (many or one + 's')}"


def errno_words(code: int | None) -> str:
    if code is None:
        return "the connection failed"
    return _ERRNO_WORDS.get(code) or os.strerror(code)


def peer(info) -> str:
    """How a connection is named everywhere: ``peer 3 alice (10.0.0.7:9090)``."""
    if info.name is None:
        return f"peer {info.id} ({info.host}:{info.port})"
    return f"peer {info.id} {sanitize(info.name)} ({info.host}:{info.port})"


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


def renamed(before, after) -> str:
    if after.name is None:
        return f"{peer(before)} no longer has a name"
    return f"{peer(before)} is now known as {sanitize(after.name)}"


def refused_name(info, text: str) -> str:
    return (f'{peer(info)} announced "{sanitize(text)}" as its name; that is not a name, so '
            f"it is shown without one")


def sent_to_all(count: int, missed: list) -> str:
    """The one confirmation of ``send all`` (before the text)."""
    if not missed:
        return f"sent to {plural(count, 'connection')}:"
    who = ", ".join(peer(info) for info in missed[:3])
    if len(missed) > 3:
        who += f" and {len(missed) - 3} more"
    closed = "it closed first" if len(missed) == 1 else "they closed first"
    return f"sent to {count - len(missed)} of {plural(count, 'connection')} (not to {who}: {closed}):"


def address_problem(value: str) -> str:
    return _ADDRESS_PROBLEMS.get(value, value)


def refusal_reason(refusal: Refusal | None, limit: int = 0, peer_id: int = 0,
                   detail: str = "", ours: bool = True) -> str:
    """Why a connection cannot be (``ours``: our own limits; else: what the peer said)."""
    if refusal is Refusal.SELF:
        return "that is this peer itself"
    if refusal is Refusal.DUPLICATE:
        return f"already connected to it as peer {peer_id}" if peer_id else \
            "it is already connected to you"
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
    if refusal is Refusal.CONNECTING:
        return "another connect is still in progress"
    if refusal is Refusal.NO_ROUTE:
        return address_problem(detail)
    return f"it refused the connection ({sanitize(detail)})" if detail else \
        "it refused the connection"


def cannot_connect(host: str, port: int, refused: Refused) -> str:
    reason = refusal_reason(refused.refusal, refused.limit, refused.peer_id, refused.detail)
    if refused.refusal is Refusal.NO_SOCKET:
        reason = f"no socket to be had ({errno_words(refused.errno)})"
    return f"cannot connect to {sanitize(host)}:{port}: {reason}"


def could_not_connect(host: str, port: int, failed: ConnectFailed) -> str:
    failure = failed.failure
    if failure is Failure.REFUSED_BY_PEER:
        reason = refusal_reason(failed.refusal, failed.limit, detail=failed.detail, ours=False)
    elif failure is Failure.TIMED_OUT:
        reason = f"timed out (no answer after {failed.timeout_s:g} s)"
    elif failure is Failure.CLOSED:
        reason = "it closed the connection at once"
    elif failure is Failure.HANDSHAKE:
        reason = ("its handshake was malformed" if failed.refusal is Refusal.MALFORMED else
                  refusal_reason(failed.refusal, detail=failed.detail, ours=False)
                  if failed.refusal else "it never finished the handshake")
    elif failure is Failure.CANCELLED:
        reason = "cancelled"
    else:
        reason = errno_words(failed.errno)
    return f"could not connect to {host}:{port}: {reason}"


def lost(info, outcome: Lost) -> list[str]:
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
                 f"{outcome.silent_s:.0f} s)"]
    elif reason is CloseReason.EVICTED:
        lines = [f"dropped {who} to make room for a new connection (it had been silent for "
                 f"{outcome.silent_s / 60:.0f} min)"]
    elif reason is CloseReason.REFUSED:
        lines = [f"{who} refused the connection ({sanitize(outcome.detail)})"]
    elif reason is CloseReason.PROTOCOL:
        lines = [f"dropped {who}: it broke the protocol ({sanitize(outcome.detail)})"]
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


def bad_hello(address: str, refusal: Refusal, detail: str) -> str:
    what = ("speaks another version of the chat protocol" if refusal is Refusal.VERSION
            else f"sent a malformed hello ({sanitize(detail)})")
    return f"refused a connection from {address}: it {what}"

"""send, name, history."""

from __future__ import annotations

import time

from network.outcomes import Posted, Refused

from . import words
from .base import (Command, CommandError, Context, UsageError, ascii_digits, is_name,
                   lookup_peer)
from .sanitize import MAX_MESSAGE_CHARS, maybe_unsafe_char

# ``send all`` goes on without waiting for a slow peer, until this many are not yet
# confirmed (a slow peer is that many messages behind): then it waits, as ``send`` does.
MAX_UNCONFIRMED_BROADCASTS = 1000


class Send(Command):
    name = "send"
    usage = "<id> <message>"
    summary = "send a message to <id>, a name, <ip>:<port>, or all"
    details = ("<id> is a number from \"list\", a peer's name (if only one connection has\n"
               "it), the peer's <ip>:<port> as \"list\" shows it, or \"all\" for every\n"
               "connection. The name you trust an identity as works even when it is not\n"
               "connected: the message is queued (on disk) and sent, once, when it is.\n"
               "The message is the rest of the line, spaces inside it kept,\n"
               f"at most {MAX_MESSAGE_CHARS} characters (Unicode code points: é and 日 "
               "count one each).\n"
               "If that peer is slow to read, this waits until it catches up. \"send all\"\n"
               "serves everyone else at once and confirms once every peer has the\n"
               f"message; it waits only when a slow peer is {MAX_UNCONFIRMED_BROADCASTS} "
               "messages behind.")
    completes_ids = True
    completes_all = True
    min_args = 1
    max_args = 2
    rest_of_line = True

    def __init__(self) -> None:
        self._unconfirmed = 0          # send all: messages some peer does not have yet
        self._release = None           # the queue's release while we wait for them

    def run(self, ctx: Context, args: list[str]) -> None:
        if len(args) < 2:
            raise UsageError(words.EMPTY_MESSAGE)
        text = args[1]
        to_all = args[0].lower() == "all"
        info = trusted = None
        if not to_all:
            try:
                info = lookup_peer(ctx, args[0])
            except CommandError:
                # A name our user trusts addresses that identity, connected or not.
                trusted = ctx.node.trusted_named(args[0]) if is_name(args[0]) else None
                if trusted is None:
                    raise
        if len(text) > MAX_MESSAGE_CHARS:
            raise CommandError(words.message_too_long(len(text), MAX_MESSAGE_CHARS))
        bad = maybe_unsafe_char(text)
        if bad is not None:
            raise CommandError(words.control_character(bad))
        if to_all:
            self._send_all(ctx, text)
            return
        release = ctx.hold()

        def done(posted: Posted, info=info) -> None:
            if posted is Posted.WRITTEN:
                if info is None:
                    info = next((p for p in ctx.node.peers()
                                 if p.fingerprint == trusted.fingerprint), None)
                if info is None:
                    ctx.console.queued(trusted.name, text)
                else:
                    ctx.console.sent(info, text)
            elif posted is Posted.QUEUED:
                ctx.console.queued(trusted.name if trusted else info.trusted_name or
                                   words.peer(info), text)
            else:
                ctx.console.error(words.not_sent(info.id))
            release()
        if trusted is not None:
            if ctx.node.send_to_trusted(trusted.name, text, done) is Posted.QUEUED:
                done(Posted.QUEUED)
            return
        ctx.node.send(info.id, text, done)

    def _send_all(self, ctx: Context, text: str) -> None:
        def done(count: int, missed: list) -> None:
            if count:
                ctx.console.sent_to_all(count, missed, text)
            else:
                ctx.console.error(words.NOBODY_TO_SEND_TO)
            self._unconfirmed -= 1
            if self._release is not None and self._unconfirmed < MAX_UNCONFIRMED_BROADCASTS:
                release, self._release = self._release, None
                release()

        self._unconfirmed += 1
        ctx.node.send_to_all(text, done)
        if self._unconfirmed >= MAX_UNCONFIRMED_BROADCASTS and self._release is None:
            self._release = ctx.hold()


class Name(Command):
    name = "name"
    usage = "[new name]"
    summary = "show the name chat.py peers see, or change it"
    details = ("A name is 1 to 32 letters or digits (any script), \"-\", \"_\" or \".\",\n"
               "not all digits and not \"all\". Connected chat.py peers are told at once;\n"
               "plain clients (nc) never see it.\n"
               "A name is a label anyone can claim, not proof.")
    max_args = 1
    rest_of_line = True      # so "name al ice" is told what is wrong with the space

    def run(self, ctx: Context, args: list[str]) -> None:
        if not args:
            if ctx.node.name is None:
                ctx.console.info(words.NO_NAME_OF_YOURS)
            else:
                ctx.console.info(words.your_name(ctx.node.name))
            return
        try:
            told = ctx.node.set_name(args[0])
        except Refused as exc:
            raise CommandError(words.bad_name(args[0], exc)) from None
        ctx.console.info(words.now_known_as(ctx.node.name, told))


class History(Command):
    name = "history"
    usage = "[peer] [N]"
    summary = "show the last N messages (20), and if ours were delivered"
    details = ("<peer> is an id from \"list\", a name (the one you trust an identity as, or\n"
               "the one a peer announces) or <ip>:<port>; without it, every message.\n"
               "A lone number is N: \"history 1 20\" is peer 1's last 20.\n"
               "Each message shows the local time, \"from\" or \"to\", and for ours its\n"
               "state: delivered (the peer's chat.py stored and showed it), sent (written,\n"
               "waiting for the receipt), queued (waiting for a connection), or\n"
               "\"sent, no receipts\" (a plain client or an older chat.py cannot say).\n"
               "The history survives restarts unless chat.py runs with --no-history.")
    max_args = 2

    def run(self, ctx: Context, args: list[str]) -> None:
        count = DEFAULT_HISTORY_COUNT
        if args and ascii_digits(args[-1]) and (len(args) == 2 or len(args[-1]) < 7):
            count = max(1, int(args[-1][:7]))
            args = args[:-1]
        if len(args) > 1:
            raise UsageError(words.takes_at_most(self.name, 2))
        who = args[0] if args else None
        records = ctx.node.history(count, **_history_filter(ctx, who)) if who \
            else ctx.node.history(count)
        if not records:
            ctx.console.info(words.history_empty_for(who) if who else words.NO_HISTORY)
            return
        for record in records:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.at))
            ctx.console.info(words.history_line(record, when))


DEFAULT_HISTORY_COUNT = 20


def _history_filter(ctx: Context, who: str) -> dict:
    """Which messages ``who`` means: one identity, one address, or one announced name."""
    if not is_name(who):
        info = lookup_peer(ctx, who)
        if info.fingerprint is not None:
            return {"fingerprint": info.fingerprint}
        return {"address": f"{info.host}:{info.port}"}
    trusted = ctx.node.trusted_named(who)
    if trusted is not None:
        return {"fingerprint": trusted.fingerprint}
    return {"name": who}

"""myid, trust, untrust: who we are, and whom we know."""

from __future__ import annotations

from network.outcomes import TrustError

from . import words
from .base import Command, CommandError, Context, lookup_peer


class MyId(Command):
    name = "myid"
    immediate = True
    summary = "show your ID (the fingerprint peers see and can trust)"
    details = ("Compare it with your peer out of band (in person, by phone), as with SSH:\n"
               "a first contact is trusted on first use.")

    def run(self, ctx: Context, args: list[str]) -> None:
        my_id = ctx.node.my_id()
        if my_id is None:
            raise CommandError(words.NO_IDENTITY)
        ctx.console.info(words.your_id(my_id))


MAX_NAME_OR_ID_CHARS = 40     # a name or connection id is shorter; a full ID is 56 or more


class Trust(Command):
    name = "trust"
    usage = "[<id> [name]]"
    summary = "trust <id> (or a full ID) as [name]; alone: list them"
    details = ("\"trust <full ID> <name>\" trusts an ID read out to you before it ever\n"
               "connected (its check characters catch a typo).\n"
               "Without a name, the one it announces is used. A trusted peer's messages are\n"
               "labelled with your name for it, and if it ever\n"
               "comes back with another key you are warned. Only an encrypted connection\n"
               "can be trusted (a plain one proves no identity).")
    completes_ids = True
    max_args = 2

    def run(self, ctx: Context, args: list[str]) -> None:
        if not args:
            ctx.console.trusted_list(ctx.node.trusted())
            return
        if len(args[0]) > MAX_NAME_OR_ID_CHARS:      # an ID: 56 characters and more
            if len(args) < 2:
                raise CommandError(words.TRUST_ID_NEEDS_NAME)
            try:
                trusted = ctx.node.trust_id(args[0], args[1])
            except TrustError as exc:
                raise CommandError(words.trust_problem(exc)) from None
            ctx.console.trusted_id(trusted)
            return
        info = lookup_peer(ctx, args[0])
        try:
            trusted = ctx.node.trust_peer(info.id, args[1] if len(args) > 1 else None)
        except TrustError as exc:
            raise CommandError(words.trust_problem(exc, info)) from None
        ctx.console.trusted(info, trusted)


class Untrust(Command):
    name = "untrust"
    usage = "<name>"
    summary = "stop trusting the identity named <name>"
    min_args = max_args = 1

    def run(self, ctx: Context, args: list[str]) -> None:
        try:
            gone = ctx.node.untrust(args[0])
        except TrustError as exc:
            raise CommandError(words.trust_problem(exc)) from None
        ctx.console.untrusted(gone)

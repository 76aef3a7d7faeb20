"""send."""

from __future__ import annotations

from .base import Command, CommandError, Context, UsageError, lookup_peer
from .sanitize import MAX_MESSAGE_CHARS, maybe_unsafe_char


class Send(Command):
    name = "send"
    usage = "<id> <message>"
    summary = f"send a message (at most {MAX_MESSAGE_CHARS} characters) to connection <id>"
    details = ("<id> is a number from \"list\", or the peer's <ip>:<port> as \"list\" shows it.\n"
               "The message is the rest of the line, spaces inside it kept.\n"
               "Characters are counted as Unicode code points: é and 日 count one each.\n"
               "If that peer is slow to read, this waits until it catches up.")
    completes_ids = True
    min_args = 1
    max_args = 2
    rest_of_line = True

    def run(self, ctx: Context, args: list[str]) -> None:
        if len(args) < 2:
            raise UsageError("empty message")
        info = lookup_peer(ctx, args[0])
        text = args[1]
        if len(text) > MAX_MESSAGE_CHARS:
            raise CommandError(f"message is {len(text)} characters long; the limit is "
                               f"{MAX_MESSAGE_CHARS} (nothing was sent)")
        bad = maybe_unsafe_char(text)
        if bad is not None:
            raise CommandError(f"messages cannot contain control characters (found {bad}); "
                               f"nothing was sent")
        release = ctx.hold()

        def done(ok: bool) -> None:
            if ok:
                ctx.console.sent(info, text)
            else:
                ctx.console.error(f"message to peer {info.id} was not sent: the connection "
                                  f"closed first")
            release()
        ctx.node.send(info.id, text, done)

"""connect, list, terminate."""

from __future__ import annotations

from network.outcomes import Declined, Refused, split_host_port

from . import words
from .base import Command, CommandError, Context, UsageError, lookup_peer, parse_port


class Connect(Command):
    name = "connect"
    usage = "<ip> <port>"
    summary = "connect to <ip> <port>, or to a known <name> or <ID>"
    details = ("<ip> is an IPv4 or IPv6 address, or a host name (looked up by the\n"
               "system's resolver while chat.py goes on); \"connect <ip>:<port>\" and\n"
               "\"connect [<IPv6>]:<port>\" work too.\n"
               "\"connect <name>\" and \"connect <ID>\" reach an identity you trust (or one\n"
               "nearby) where it was last heard or seen; it must prove that identity.\n"
               "The connection's id is fixed now (shown as \"as peer N\"), whoever else\n"
               "connects meanwhile. Commands typed after it wait until it has\n"
               "succeeded or failed.")
    min_args, max_args = 1, 2

    def run(self, ctx: Context, args: list[str]) -> None:
        if len(args) == 2:
            host, port_text = args
            if host.startswith("[") and host.endswith("]"):
                host = host[1:-1]
        else:
            host, port_text = split_host_port(args[0])
            if port_text is None:
                if ":" in args[0] or all(c.isdigit() or c == "." for c in args[0]):
                    raise UsageError(words.needs_more_arguments(self.name))   # an address
                self._to_identity(ctx, args[0])
                return
        port = parse_port(port_text)
        self._start(ctx, lambda done: (*ctx.node.connect(host, port, done), port),
                    lambda exc: words.cannot_connect(host, port, exc))

    def _to_identity(self, ctx: Context, who: str) -> None:
        """connect <name> / connect <ID>: where that identity was last heard or seen."""
        self._start(ctx, lambda done: ctx.node.connect_to(who, done),
                    lambda exc: words.cannot_connect_to(who, exc))

    @staticmethod
    def _start(ctx: Context, dial, cannot) -> None:
        """Hold the queue while ``dial(done)`` (returning address, id, port) runs its
        course; a peer we have already is said so, any other refusal is an error."""
        release = ctx.hold()
        try:
            ip, peer_id, port = dial(lambda ok: release())
        except Refused as exc:
            release()
            if exc.reason is Declined.DUPLICATE:   # not a mistake: it is there already
                ctx.console.already_connected(ctx.node.peer(exc.peer_id))
                return
            raise CommandError(cannot(exc)) from None
        ctx.console.connecting(ip, port, peer_id)


class Nearby(Command):
    name = "nearby"
    summary = "show the chat.py peers heard on the local network lately"
    details = ("Every chat.py announces its name, ID and port on the local network every\n"
               "30 s; these are their claims. \"connect <name>\" connects to one, and\n"
               "checks its ID.")

    def run(self, ctx: Context, args: list[str]) -> None:
        ctx.console.nearby_table(ctx.node.nearby(), ctx.node.short_id)


class List(Command):
    name = "list"
    summary = "show every connection: id, name, IP address, port"

    def run(self, ctx: Context, args: list[str]) -> None:
        ctx.console.peer_table(ctx.node.peers(), ctx.node.short_id)


class Terminate(Command):
    name = "terminate"
    usage = "<id>"
    summary = "close connection <id> (or a name, or <ip>:<port>)"
    completes_ids = True
    min_args = max_args = 1

    def run(self, ctx: Context, args: list[str]) -> None:
        info = lookup_peer(ctx, args[0])
        ctx.node.terminate(info.id)
        ctx.console.terminated(info)

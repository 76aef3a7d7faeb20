"""connect, list, terminate."""

from __future__ import annotations

from .base import Command, CommandError, Context, lookup_peer, parse_port


class Connect(Command):
    name = "connect"
    usage = "<ip> <port>"
    summary = "open a connection to the peer listening at <ip> <port>"
    details = ("<ip> is an IPv4 address, localhost, or a name from /etc/hosts.\n"
               "Commands typed after it wait until it has succeeded or failed.")
    min_args = max_args = 2

    def run(self, ctx: Context, args: list[str]) -> None:
        host, port_text = args
        port = parse_port(port_text)
        release = ctx.hold()
        try:
            ip = ctx.node.connect(host, port, lambda ok: release())
        except ValueError as exc:
            release()
            raise CommandError(f"cannot connect to {host}:{port}: {exc}") from None
        ctx.console.connecting(ip, port)


class List(Command):
    name = "list"
    summary = "show every connection with its id, IP address and port"

    def run(self, ctx: Context, args: list[str]) -> None:
        ctx.console.peer_table(ctx.node.peers())


class Terminate(Command):
    name = "terminate"
    usage = "<id>"
    summary = "close the connection with id <id> (see list)"
    completes_ids = True
    min_args = max_args = 1

    def run(self, ctx: Context, args: list[str]) -> None:
        info = lookup_peer(ctx, args[0])
        ctx.node.terminate(info.id)
        ctx.console.terminated(info)

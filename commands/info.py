"""help, myip, myport."""

from __future__ import annotations

from . import words
from .base import Command, Context


class Help(Command):
    name = "help"
    immediate = True
    aliases = ("?",)
    usage = "[command]"
    summary = "show the commands, or more about one of them"
    max_args = 1

    def run(self, ctx: Context, args: list[str]) -> None:
        registry = ctx.registry
        ctx.console.lines(registry.help_for(args[0]) if args else registry.help_lines())


class MyIp(Command):
    name = "myip"
    immediate = True
    summary = "show the addresses other machines can reach this peer at"
    details = ("The IPv4 address of the interface that carries the default route, and\n"
               "the routed IPv6 address when there is one (no packet is sent to find them).")

    def run(self, ctx: Context, args: list[str]) -> None:
        ip = ctx.node.my_ip()
        ctx.console.info(words.my_ip(ip, ip.startswith("127."), ctx.node.my_ipv6()))


class MyPort(Command):
    name = "myport"
    immediate = True
    summary = "show the port this peer listens on"

    def run(self, ctx: Context, args: list[str]) -> None:
        ctx.console.info(words.listening_port(ctx.node.port))

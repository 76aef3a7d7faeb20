"""exit."""

from __future__ import annotations

from .base import Command, Context


class Exit(Command):
    name = "exit"
    aliases = ("quit",)
    summary = "send what is queued, close every connection, quit"

    def run(self, ctx: Context, args: list[str]) -> None:
        ctx.request_exit()

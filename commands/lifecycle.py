"""exit."""

from __future__ import annotations

from .base import Command, Context


class Exit(Command):
    name = "exit"
    summary = "close every connection (after sending what is queued) and quit"

    def run(self, ctx: Context, args: list[str]) -> None:
        ctx.request_exit()

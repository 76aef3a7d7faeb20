"""The user side of chat.py: commands, their registry, the console."""

from __future__ import annotations

from .base import Command, CommandError, Context, UsageError
from .connections import Connect, List, Nearby, Terminate
from .identity import MyId, Trust, Untrust
from .console import Console
from .info import Help, MyIp, MyPort
from .lifecycle import Exit
from .messaging import History, Name, Send
from .registry import CommandRegistry
from .queue import CommandRunner


def default_registry() -> CommandRegistry:
    """The built-in commands, in the order `help` lists them."""
    registry = CommandRegistry()
    for command in (Help(), MyIp(), MyPort(), MyId(), Connect(), List(), Nearby(), Terminate(),
                    Send(), Name(), History(), Trust(), Untrust(), Exit()):
        registry.add(command)
    return registry


__all__ = ["Command", "CommandError", "CommandRegistry", "CommandRunner", "Console",
           "Context", "UsageError", "default_registry"]

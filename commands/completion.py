"""Tab completion for the interactive line editor: command names, then live ids and names."""

from __future__ import annotations

from typing import Callable

from .base import NodeAPI
from .sanitize import sanitize


def make_completer(registry, node: NodeAPI) -> Callable[[str], list[str]]:
    """A function from the text before the cursor to the words that could come next."""

    def complete(before: str) -> list[str]:
        words = before.split(" ")
        if len(words) == 1:
            return [name for name in registry.names() if name.startswith(words[0])]
        command = registry.get(words[0].lower())
        if len(words) == 2 and command is not None and command.completes_ids:
            peers = node.peers()
            choices = [str(p.id) for p in peers]
            choices += sorted({sanitize(p.name) for p in peers if p.name is not None})
            if command.completes_all:
                choices.append("all")
            return [choice for choice in choices if choice.startswith(words[1])]
        return []

    return complete

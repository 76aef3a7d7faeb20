"""Tab completion for the interactive line editor: command names (also after
``help``), then live ids, names and ``all``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from network.outcomes import PeerInfo

from .sanitize import sanitize

if TYPE_CHECKING:
    from .registry import CommandRegistry


def make_completer(registry: CommandRegistry, peers: Callable[[], list[PeerInfo]]
                   ) -> Callable[[str], list[str]]:
    """A function from the text before the cursor to the words that could come next.

    ``peers()`` gives the live connections when Tab is pressed (a function, not the
    node: the editor is built before the node, which needs the console, which needs
    the editor's screen).
    """

    def complete(before: str) -> list[str]:
        words = before.split(" ")
        if len(words) == 1:
            return [name for name in registry.names() if name.startswith(words[0])]
        command = registry.get(words[0].lower())
        if len(words) == 2 and command is not None and command.name == "help":
            return [name for name in registry.names() if name.startswith(words[1].lower())]
        if len(words) == 2 and command is not None and command.completes_ids:
            live = peers()
            choices = [str(p.id) for p in live]
            choices += sorted({sanitize(p.name) for p in live if p.name is not None})
            if command.completes_all:
                choices.append("all")
            return [choice for choice in choices if choice.startswith(words[1])]
        return []

    return complete

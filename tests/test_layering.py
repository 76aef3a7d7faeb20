"""Imports point down: chat.py -> commands -> (nothing below but its own), network -> reactor.

    chat.py     may import anything (it is the composition root)
    commands/   the user side: never imports reactor, nor network's machinery (the node
                arrives through an interface); only network.outcomes, its vocabulary
    network/    the chat network: imports reactor, never commands or chat.py
    reactor/    chat-agnostic I/O: imports nothing of ours but itself
"""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

PACKAGES = ("reactor", "network", "commands")
# What each package may import of ours, besides itself.
ALLOWED = {"reactor": set(), "network": {"reactor"}, "commands": set()}
# Single modules a package may import although their package is not allowed.
VOCABULARY = {"commands": {"network.outcomes"}}


def imports_of(path: Path) -> set[str]:
    """Absolute dotted names of every import in ``path`` (relative ones resolved)."""
    return imports_in(path.read_text(), ".".join(path.relative_to(ROOT).parent.parts))


def imports_in(source: str, package: str) -> set[str]:
    tree = ast.parse(source)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                prefix = ".".join(base)
                if node.module:
                    found.add(f"{prefix}.{node.module}")
                else:
                    found.update(f"{prefix}.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return found


def modules(package: str):
    return sorted((ROOT / package).rglob("*.py"))


def ours(name: str) -> str | None:
    top = name.split(".")[0]
    return top if top in PACKAGES or top == "chat" else None


def test_every_package_imports_only_what_lies_below_it():
    for package in PACKAGES:
        for path in modules(package):
            for name in imports_of(path):
                top = ours(name)
                if top is None or top == package or name in VOCABULARY.get(package, ()):
                    continue
                assert top in ALLOWED[package], \
                    f"{path.relative_to(ROOT)} imports {name}: {package} may not import {top}"


def test_the_check_itself_sees_imports():
    assert "commands.base" in imports_of(ROOT / "commands" / "registry.py")
    assert "reactor.loop" in imports_of(ROOT / "network" / "node.py")
    assert "reactor" in {n.split(".")[0] for n in imports_of(ROOT / "chat.py")}
    assert "network.outcomes" in imports_of(ROOT / "commands" / "words.py")


def test_the_vocabulary_the_commands_share_has_no_behaviour():
    """network.outcomes may be imported by the user side because it imports nothing of ours."""
    assert not {n for n in imports_of(ROOT / "network" / "outcomes.py") if ours(n)}
    # A relative import from a sub-package resolves to the parent package.
    source = "from ..sanitize import sanitize\nfrom . import lineedit\n"
    assert imports_in(source, "commands.terminal") == {"commands.sanitize",
                                                       "commands.terminal.lineedit"}


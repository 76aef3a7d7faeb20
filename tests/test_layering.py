"""Imports point down: chat.py -> commands, reactor; commands never -> reactor."""

import ast
from pathlib import Path

from helpers import ROOT

CHAT_SPECIFIC = {"node", "peers", "wire"}   # reactor modules that know about chat


def imports_of(path: Path) -> set[str]:
    """Top-level package (or sibling module, for relative imports) of every import."""
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:   # relative: a sibling module of the same package
                base = node.module.split(".")[0] if node.module else None
                if base:
                    found.add(f".{base}")
                else:
                    found.update(f".{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return found


def modules(package: str):
    return sorted((ROOT / package).glob("*.py"))


def test_commands_never_import_reactor_or_chat():
    for path in modules("commands"):
        for name in imports_of(path):
            assert not name.startswith(("reactor", "chat")), f"{path.name} imports {name}"


def test_generic_reactor_modules_know_nothing_of_chat():
    for path in modules("reactor"):
        names = imports_of(path)
        assert not any(n.startswith(("commands", "chat")) for n in names), path.name
        if path.stem in CHAT_SPECIFIC or path.stem == "__init__":
            continue
        chat_imports = {n for n in names if n.lstrip(".") in CHAT_SPECIFIC}
        assert not chat_imports, f"{path.name} imports {chat_imports}"


def test_nothing_imports_chat_py():
    for package in ("reactor", "commands"):
        for path in modules(package):
            assert "chat" not in imports_of(path), path.name


def test_the_check_itself_sees_imports():
    assert ".base" in imports_of(ROOT / "commands" / "registry.py")
    assert "reactor" in {n.split(".")[0] for n in imports_of(ROOT / "chat.py")}

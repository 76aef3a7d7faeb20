"""One object, one room: the structure the code must keep.

* **No mixins.** A class of ours that another class of ours inherits from either has
  an ``__init__`` of its own, or touches no state it does not define itself (an
  interface such as ``reactor.protocol.Protocol`` or ``commands.base.Command``, whose
  attributes are all declared in its own body). A base that reads or writes
  ``self.x`` where ``x`` is made somewhere else is a mixin: one object's state spread
  over files, which is what this test forbids.
* **The node's bookkeeping is written only where it lives.** The fields of
  ``network.registry.Entry`` are set in ``network/registry.py`` and nowhere else (by
  the registry's transitions and the entry's named methods).

Both checks read the source (``ast``), so they also catch code that never runs in a
test. Each comes with a test that it catches the old shape.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

from helpers import ROOT

PACKAGES = ("reactor", "network", "commands")
BOOKKEEPING_HOME = Path("network/registry.py")


def sources(root: Path = ROOT):
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            yield path.relative_to(root), path.read_text()


# -- mixins -------------------------------------------------------------------------------

def _self_attributes(func: ast.AST) -> set[str]:
    """Every ``self.x`` a method reads or writes."""
    return {node.attr for node in ast.walk(func)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "self"}


def _defined_in_body(cls: ast.ClassDef) -> set[str]:
    """Names the class body itself defines: methods, properties, class attributes, slots."""
    names = set()
    for item in cls.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(item.name)
        elif isinstance(item, ast.Assign):
            for target in item.targets:
                for node in ast.walk(target):
                    if isinstance(node, ast.Name):
                        names.add(node.id)
                if isinstance(target, ast.Name) and target.id == "__slots__":
                    names.update(elt.value for elt in ast.walk(item.value)
                                 if isinstance(elt, ast.Constant) and isinstance(elt.value, str))
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            names.add(item.target.id)
    return names


def _init_of(cls: ast.ClassDef) -> ast.FunctionDef | None:
    return next((item for item in cls.body
                 if isinstance(item, ast.FunctionDef) and item.name == "__init__"), None)


def _base_names(cls: ast.ClassDef) -> list[str]:
    names = []
    for base in cls.bases:
        if isinstance(base, ast.Name):
            names.append(base.id)
        elif isinstance(base, ast.Attribute):
            names.append(base.attr)
    return names


def mixins(root: Path = ROOT) -> list[str]:
    """``"path: Base (used by Child) uses self.x, self.y"`` for each mixin base of ours."""
    classes: dict[str, tuple[Path, ast.ClassDef]] = {}
    children: dict[str, list[str]] = {}
    for path, text in sources(root):
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                classes[node.name] = (path, node)
    for name, (_, cls) in classes.items():
        for base in _base_names(cls):
            if base in classes:
                children.setdefault(base, []).append(name)
    found = []
    for base, users in sorted(children.items()):
        path, cls = classes[base]
        if _init_of(cls) is not None:
            continue
        own = _defined_in_body(cls)
        for grand in _base_names(cls):          # what its own bases of ours define
            if grand in classes:
                own |= _defined_in_body(classes[grand][1])
        used = set().union(*(_self_attributes(item) for item in cls.body
                             if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))))
        foreign = sorted(used - own)
        if foreign:
            found.append(f"{path}: {base} (base of {', '.join(sorted(users))}) uses state it "
                         f"does not define: {', '.join('self.' + a for a in foreign)}")
    return found


def test_no_class_of_ours_is_a_mixin():
    assert mixins() == []


def test_the_mixin_check_catches_a_mixin(tmp_path):
    (tmp_path / "network").mkdir()
    for package in PACKAGES[:1] + PACKAGES[2:]:
        (tmp_path / package).mkdir()
    (tmp_path / "network" / "node.py").write_text(textwrap.dedent("""
        class Rules:                      # reads the node's table: a mixin
            def check(self, key):
                return key in self._table

        class Node(Rules):
            def __init__(self):
                self._table = {}

        class Interface:                  # declares what it uses: not a mixin
            transport = None
            def connection_made(self, transport):
                self.transport = transport

        class Impl(Interface):
            def __init__(self):
                self.x = 1
        """))
    assert mixins(tmp_path) == ["network/node.py: Rules (base of Node) uses state it does "
                                "not define: self._table"]


# -- the node's bookkeeping -----------------------------------------------------------------

def bookkeeping_fields(root: Path = ROOT) -> set[str]:
    tree = ast.parse((root / BOOKKEEPING_HOME).read_text())
    entry = next(node for node in ast.walk(tree)
                 if isinstance(node, ast.ClassDef) and node.name == "Entry")
    return {name for name in _defined_in_body(entry) if not name.startswith("__")} \
        - {item.name for item in entry.body if isinstance(item, ast.FunctionDef)}


def foreign_writes(fields: set[str], root: Path = ROOT, home: Path = BOOKKEEPING_HOME
                   ) -> list[str]:
    """``"path:line obj.field"`` for each write of one of ``fields`` on an object other
    than ``self``, outside ``home`` (chat.py and every package of ours are read)."""
    found = []
    files = list(sources(root)) + [(Path("chat.py"), (root / "chat.py").read_text())]
    for path, text in files:
        if path == home:
            continue
        for node in ast.walk(ast.parse(text)):
            targets = []
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            elif isinstance(node, ast.Delete):
                targets = node.targets
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Attribute) and sub.attr in fields and not (
                            isinstance(sub.value, ast.Name) and sub.value.id == "self"):
                        found.append(f"{path}:{sub.lineno} {ast.unparse(sub)}")
    return found


def test_the_nodes_bookkeeping_is_set_only_in_the_registry():
    fields = bookkeeping_fields()
    assert {"info", "peer_id", "target", "deferred", "close_reason", "moved"} <= fields
    assert foreign_writes(fields) == []


def test_the_bookkeeping_check_catches_a_write_from_another_module(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "network" / "registry.py").write_text("class Entry:\n"
                                                      "    __slots__ = ('deferred', 'info')\n")
    (tmp_path / "network" / "node.py").write_text(textwrap.dedent("""
        def decide(entry, conn):
            entry.deferred = True
            conn.info, x = None, 1
            self_like = entry
            self_like.other = 2
        """))
    (tmp_path / "chat.py").write_text("")
    fields = bookkeeping_fields(tmp_path)
    assert fields == {"deferred", "info"}
    assert foreign_writes(fields, tmp_path) == ["network/node.py:3 entry.deferred",
                                                "network/node.py:4 conn.info"]

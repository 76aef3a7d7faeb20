"""Every sentence a user reads is written in ``commands/words.py``.

The console lays out lines (prefixes, colours, the prompt, tables), the commands
raise ``CommandError(words.something(...))``, and ``chat.py`` reports its start-up
errors with ``words`` too: none of them composes a sentence. Two rules, checked on
the syntax tree of every module of ``commands/`` but ``words.py``, and of ``chat.py``:

1. **What reaches the user is no literal.** The arguments of a call that shows text
   (``CommandError(...)``, ``UsageError(...)``, the console's ``info``, ``error``,
   ``notice``, ``event`` and ``lines``; in ``chat.py`` also ``ArgumentTypeError``,
   ``_fail`` and ``_warn``) hold no string literal or f-string with a letter in it,
   however deep (``"x" + y``, ``f"... {y}"``, ``a if c else "b"``, ``g("word")``).
   Layout without letters (``"  ".join(...)``) is not words.
2. **No literal anywhere reads like a sentence** (two words of two letters or more,
   and a space), so a sentence built first and shown later is caught too. Exempt:
   docstrings; a class's help data (``name``, ``aliases``, ``usage``, ``summary``,
   ``details``: the registry's design, so help survives ``python -OO``); the argparse
   help of ``chat.py`` (``help=``, ``description=``, ``epilog=``: the parser's data, as
   help is the commands'); and the message of an exception that is not ours (a bug's
   words, e.g. ``ValueError("command 'x' is registered twice")``, never one of our lines).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from helpers import ROOT

SHOWN_BY = {"CommandError", "UsageError", "info", "error", "notice", "event", "lines"}
SHOWN_BY_CHAT = {"ArgumentTypeError", "_fail", "_warn"}
OUR_ERRORS = {"CommandError", "UsageError", "ArgumentTypeError"}
HELP_DATA = {"name", "aliases", "usage", "summary", "details"}
PARSER_HELP = {"help", "description", "epilog"}

_LETTER = re.compile(r"[^\W\d_]")
_WORD = re.compile(r"[^\W\d_]{2,}")


def sources(root: Path = ROOT) -> list[Path]:
    """The modules the rules apply to: commands/ but words.py, and chat.py."""
    words = root / "commands" / "words.py"
    found = [p for p in sorted((root / "commands").rglob("*.py")) if p != words]
    return found + [root / "chat.py"]


def reads_like_a_sentence(text: str) -> bool:
    return " " in text and len(_WORD.findall(text)) >= 2


def literal_text(node: ast.AST) -> str | None:
    """The text of a string literal; an f-string's with ``{}`` for each value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "{}"
                       for part in node.values)
    return None


def _callee(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _texts_inside(node: ast.AST):
    """Every string literal within ``node`` (an f-string's format specs left out)."""
    text = literal_text(node)
    if text is not None:
        yield node, text
    if isinstance(node, ast.JoinedStr):   # its literal parts are in its text already
        parts = [p.value for p in node.values if isinstance(p, ast.FormattedValue)]
    else:
        parts = list(ast.iter_child_nodes(node))
    for part in parts:
        yield from _texts_inside(part)


def _exempt_nodes(tree: ast.AST, chat: bool) -> set[int]:
    """ids of the literal nodes rule 2 leaves alone (see the module's docstring)."""
    exempt: set[int] = set()

    def mark(node: ast.AST) -> None:
        exempt.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and literal_text(body[0].value) is not None:
                mark(body[0])
        if isinstance(node, ast.ClassDef):
            for statement in node.body:
                targets = (statement.targets if isinstance(statement, ast.Assign) else
                           [statement.target] if isinstance(statement, ast.AnnAssign) else [])
                if any(isinstance(t, ast.Name) and t.id in HELP_DATA for t in targets):
                    mark(statement)
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) \
                and _callee(node.exc) not in OUR_ERRORS:
            mark(node.exc)
        if chat and isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg in PARSER_HELP:
                    mark(keyword.value)
    return exempt


def sentences_outside_words(source: str, chat: bool = False) -> list[tuple[int, str]]:
    """``(line, what)`` for each place in ``source`` that composes a sentence itself."""
    tree = ast.parse(source)
    found, reported = [], set()
    shown_by = SHOWN_BY | SHOWN_BY_CHAT if chat else SHOWN_BY
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _callee(node) in shown_by:
            for argument in [*node.args, *(k.value for k in node.keywords)]:
                for literal, text in _texts_inside(argument):
                    if _LETTER.search(text):
                        found.append((literal.lineno, f"{_callee(node)}() is given {text!r}"))
                        reported.add(id(literal))
    # An f-string's literal parts are judged as part of it, not one by one.
    skip = reported | _exempt_nodes(tree, chat) | {
        id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
        for part in node.values}
    for node in ast.walk(tree):
        text = literal_text(node)
        if text is not None and id(node) not in skip and reads_like_a_sentence(text):
            found.append((node.lineno, f"a sentence: {text!r}"))
    return sorted(found)


def violations(root: Path = ROOT) -> list[str]:
    return [f"{path.relative_to(root)}:{line}: {what}"
            for path in sources(root)
            for line, what in sentences_outside_words(path.read_text(),
                                                      chat=path.name == "chat.py")]


def test_every_sentence_a_user_reads_is_written_in_words():
    found = violations()
    assert not found, ("compose these in commands/words.py:\n  " + "\n  ".join(found))


def test_the_rule_sees_a_sentence_shown_raised_or_built_first():
    bad = '''
def run(ctx, args):
    ctx.console.info(f"your ID: {ctx.node.my_id()}")
    ctx.console.info("exiting")
    raise CommandError("no such thing" if args else words.x())
hint = " (Ctrl-C to cancel)"
'''
    assert [line for line, _ in sentences_outside_words(bad)] == [3, 4, 5, 6]
    assert sentences_outside_words('raise UsageError(words.empty_message(f"{x}"))') == []
    assert sentences_outside_words('console.info(words.x("chat.py peer"))')
    assert sentences_outside_words('def f(x):\n    return f"{x} bytes are left over"')
    # A bare word shown directly is words too, and so is a word handed to words.
    assert sentences_outside_words('self._console.info("exiting")')
    # chat.py: the start-up errors are its own calls.
    assert sentences_outside_words('raise argparse.ArgumentTypeError(f"invalid {t!r}")',
                                   chat=True)
    assert sentences_outside_words('_fail(f"internal error: {exc}")', chat=True)


def test_the_rule_leaves_layout_help_data_and_bugs_alone():
    fine = '''
"""A module docstring, with words in it."""
class Send(Command):
    """send."""
    name = "send"
    usage = "<id> <message>"
    summary = "send a message to <id>, a name, <ip>:<port>, or all"
    details = (f"at most {N} characters\\n"
               "and more words")
def table(self, rows):
    """Lay out rows."""
    for r in rows:
        self.info(f"{r[0]:>{w}}  {r[1]:<{w}}")
    self.info("  ".join(rows[0]))
    self.error(str(exc))
    raise ValueError(f"command {name!r} is registered twice")
'''
    assert sentences_outside_words(fine) == []
    parser = 'p.add_argument("--stay", help="keep running after the end of input")'
    assert sentences_outside_words(parser, chat=True) == []
    assert sentences_outside_words(parser)       # only chat.py has a parser

"""The command registry: the single source of dispatch and of help text."""

from __future__ import annotations

import difflib

from . import words
from .base import Command, CommandError, Context, UsageError


class CommandRegistry:
    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}
        self._aliases: dict[str, Command] = {}

    def add(self, command: Command) -> None:
        for name in (command.name, *command.aliases):
            if name in self._commands or name in self._aliases:
                raise ValueError(f"command {name!r} is registered twice")
        self._commands[command.name] = command
        for alias in command.aliases:
            self._aliases[alias] = command

    def get(self, name: str) -> Command | None:
        return self._commands.get(name) or self._aliases.get(name)

    def names(self) -> list[str]:
        return list(self._commands)

    def __iter__(self):
        return iter(self._commands.values())

    # -- dispatch ----------------------------------------------------------------------

    def split(self, line: str) -> tuple[Command, list[str]]:
        """Find the command and its arguments, or raise :class:`CommandError`."""
        name, _, rest = line.strip().partition(" ")
        command = self.get(name.lower())
        if command is None:
            raise CommandError(self._unknown(name))
        rest = rest.strip()
        if command.rest_of_line and command.max_args:
            args = rest.split(None, command.max_args - 1) if rest else []
        else:
            args = rest.split()
        if not command.min_args <= len(args) <= command.max_args:
            raise UsageError(words.with_usage(self._arity_message(command, len(args)),
                                              command.synopsis))
        return command, args

    def dispatch(self, line: str, ctx: Context) -> None:
        """Run one input line. Errors become one ``error:`` line; nothing raises.

        Blank lines and lines starting with ``#`` (comments in a script) do nothing.
        """
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            return
        try:
            command, args = self.split(line)
        except CommandError as exc:
            ctx.console.error(str(exc))
            return
        try:
            command.run(ctx, args)
        except UsageError as exc:
            ctx.console.error(words.with_usage(str(exc), command.synopsis))
        except CommandError as exc:
            ctx.console.error(str(exc))

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name.lower(), self.names(), n=1)
        return words.unknown_command(name, close[0] if close else None)

    @staticmethod
    def _arity_message(command: Command, given: int) -> str:
        if given < command.min_args:
            return words.needs_more_arguments(command.name)
        if command.max_args == 0:
            return words.takes_no_arguments(command.name)
        return words.takes_at_most(command.name, command.max_args)

    # -- help -------------------------------------------------------------------------------

    @staticmethod
    def _help_synopsis(command: Command) -> str:
        """``exit (quit)``: the name, its aliases, then the arguments."""
        if not command.aliases:
            return command.synopsis
        return f"{command.name} ({', '.join(command.aliases)}) {command.usage}".rstrip()

    def help_lines(self) -> list[str]:
        width = max(len(self._help_synopsis(c)) for c in self)
        lines = [words.HELP_HEADING]
        lines += [f"  {self._help_synopsis(c):<{width}}  {c.summary}" for c in self]
        lines.append(words.HELP_FOOTER)
        return lines

    def help_for(self, name: str) -> list[str]:
        command = self.get(name.lower())
        if command is None:
            raise CommandError(self._unknown(name))
        lines = [words.usage(command.synopsis), f"  {command.summary}"]
        if command.aliases:
            lines.append(f"  {words.also(command.aliases)}")
        if command.details:
            lines += [f"  {line}" for line in command.details.splitlines()]
        return lines

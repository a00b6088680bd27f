"""Commands imported only when they run, so ``provisioner --help`` starts fast.

Importing every command module pulls in SQLAlchemy, pydantic, Flask, pyghmi
and more (1.4-2 s on 2 cores) before even ``--help`` prints. The group below
holds a placeholder per command (its name, module and one-line help, checked
against the real command by tests/unit/test_cli_lazy.py) and imports the
module the first time the command itself is needed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import click


class LazyCommand(click.Command):
    """Stands for ``module:attribute`` until the group resolves it."""

    def __init__(self, name: str, target: str, short_help: str) -> None:
        super().__init__(name, help=short_help)
        self.target = target

    def load(self) -> click.Command:
        module_name, _, attribute = self.target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.target} is not a click command")
        return command


class LazyGroup(click.Group):
    """A group whose placeholders become the real commands on first use.

    ``on_load`` runs on each real command once (the global options go on it
    there); the help page lists the placeholders' help without importing."""

    on_load: Callable[[click.Command], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._after_load: dict[str, list[Callable[[click.Command], None]]] = {}

    def after_load(self, name: str, extend: Callable[[click.Command], None]) -> None:
        """Run ``extend`` on command ``name`` once it is loaded (an add-on adding a subcommand)."""
        command = self.commands.get(name)
        if command is not None and not isinstance(command, LazyCommand):
            extend(command)
            if self.on_load is not None:
                self.on_load(command)
        else:
            self._after_load.setdefault(name, []).append(extend)

    def add_lazy_command(self, name: str, target: str, short_help: str) -> None:
        self.commands[name] = LazyCommand(name, target, short_help)

    def resolve(self, name: str) -> click.Command | None:
        command = self.commands.get(name)
        if isinstance(command, LazyCommand):
            command = command.load()
            for extend in self._after_load.pop(name, []):
                extend(command)
            if isinstance(command, LazyGroup) and command.on_load is None:
                command.on_load = self.on_load  # its own lazy subcommands get it too
            if self.on_load is not None:
                self.on_load(command)
            self.commands[name] = command
        return command

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self.resolve(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (name, command) for name, command in sorted(self.commands.items()) if not command.hidden
        ]
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])

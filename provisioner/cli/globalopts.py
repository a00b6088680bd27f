"""The global options, accepted after the subcommand too: ``provisioner nodes --site x.yaml``.

click only parses a group's options before the subcommand's name. Users type
them anywhere, so the one group class below gives every command it registers
(nested groups and their commands included) a copy of ``--site``,
``--state-dir``, ``--db-url`` and ``-v``. Given after the command, they
override what the group set (from its options, environment or defaults): the
group's callback has run and made the App before the command's own options
are parsed, so each copy only updates the App's settings. They carry no
default and no environment variable: only what the user typed changes
anything. ``--json`` is each command's own option where it applies.

A command that hands its arguments to another command (``lab run ARGS``,
``ignore_unknown_options``) gets none: the options after it belong to that
command.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from provisioner.cli.context import App
from provisioner.cli.lazy import LazyGroup


def _apply(field: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None or value == 0:  # not given (``-v`` counts from 0)
            return
        app = ctx.find_object(App)
        if app is not None:
            app.override(**{field: value})

    return callback


def global_options() -> list[click.Option]:
    """Fresh copies of the global options for one command (the group's own have defaults)."""
    return [
        click.Option(
            ["--site", "site_path"],
            type=click.Path(path_type=Path),
            expose_value=False,
            callback=_apply("site_path"),
            help="The site inventory (a global option, here or before the command).",
        ),
        click.Option(
            ["--state-dir"],
            type=click.Path(path_type=Path),
            expose_value=False,
            callback=_apply("state_dir"),
            help="Where state and logs live (a global option).",
        ),
        click.Option(
            ["--db-url"],
            expose_value=False,
            callback=_apply("db_url"),
            help="SQLAlchemy URL of the state store (a global option).",
        ),
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            callback=_apply("verbose"),
            help="More log output on stderr (a global option).",
        ),
    ]


def add_global_options(command: click.Command) -> None:
    """Give ``command`` (and, for a group, its commands) the global options it lacks."""
    if command.context_settings.get("ignore_unknown_options"):
        return
    taken = {opt for param in command.params for opt in getattr(param, "opts", ())}
    for option in global_options():
        if not taken & set(option.opts):
            command.params.append(option)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_global_options(sub)


class GlobalOptionsGroup(LazyGroup):
    """The top-level group: every command added to it accepts the global options.

    Commands registered lazily get them when they are loaded (``on_load``)."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        add_global_options(cmd)
        super().add_command(cmd, name)

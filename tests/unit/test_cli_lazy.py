"""The lazy command table (provisioner/cli/__init__.py COMMANDS) against the real commands.

`provisioner --help` lists the table's help without importing the command
modules; these tests keep the table honest and check what --help imports.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import click
import pytest

import provisioner.cli as cli_package
from provisioner.cli import COMMANDS, cli
from provisioner.cli.lazy import LazyCommand


def _real(name: str) -> click.Command:
    command = cli.commands[name]
    return command.load() if isinstance(command, LazyCommand) else command


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_listed_help_is_the_commands_own(name: str) -> None:
    stub = cli.commands[name]
    real = _real(name)
    assert real.name == name
    for limit in (30, 45, 70):
        assert stub.get_short_help_str(limit) == real.get_short_help_str(limit), limit


def test_every_command_of_every_module_is_in_the_table() -> None:
    listed = set()
    for info in pkgutil.iter_modules(cli_package.__path__):
        module = importlib.import_module(f"provisioner.cli.{info.name}")
        for command in getattr(module, "COMMANDS", []):
            listed.add(command.name)
            assert command.name in COMMANDS, f"{info.name}: {command.name} missing from COMMANDS"
    assert listed == set(COMMANDS)


def test_help_imports_none_of_the_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from provisioner.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'sqlalchemy', 'pydantic', 'yaml', 'flask', 'rich', 'pyghmi', 'jinja2', 'dns'}\n"
        "print('LOADED', sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "validate" in out and "vbmc" in out  # the add-on's commands are listed too
    assert "LOADED []" in out


def test_a_lazily_loaded_group_gets_the_add_ons_subcommand_and_global_options() -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["dns", "--help"])
    assert result.exit_code == 0, result.output
    assert "  lab " in result.output  # added by provisioner_lab through after_load
    result = CliRunner().invoke(cli, ["dns", "lab", "--help"])
    assert "--state-dir" in result.output  # global options reach the add-on's subcommand

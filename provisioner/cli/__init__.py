"""The `provisioner` command line.

Each area registers its commands from its own module (inventory.py, ...), so
this file only wires the group, the shared options and error handling. The
shared options are accepted after the subcommand too (cli/globalopts.py).
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

import click

from provisioner import __version__
from provisioner.cli.context import App
from provisioner.cli.globalopts import GlobalOptionsGroup
from provisioner.cli.output import console
from provisioner.errors import EXIT_INTERNAL, InventoryInvalid, ProvisionerError
from provisioner.settings import Settings, default_state_dir

log = logging.getLogger(__name__)


@click.group(
    cls=GlobalOptionsGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="provisioner")
@click.option(
    "--site",
    "site_path",
    type=click.Path(path_type=Path),
    default="site.yaml",
    envvar="PROVISIONER_SITE",
    show_default=True,
    show_envvar=True,
    help="The site inventory.",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    envvar="PROVISIONER_STATE_DIR",
    show_envvar=True,
    help=f"Where state and logs live [default: {default_state_dir()}].",
)
@click.option(
    "--db-url",
    default=None,
    envvar="PROVISIONER_DB_URL",
    show_envvar=True,
    help="SQLAlchemy URL of the state store [default: SQLite in the state dir].",
)
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.pass_context
def cli(
    ctx: click.Context, site_path: Path, state_dir: Path | None, db_url: str | None, verbose: int
) -> None:
    """Provision bare-metal nodes for an HA OpenStack cloud."""
    settings = Settings(site_path, state_dir or default_state_dir(), db_url)
    ctx.obj = App(settings, verbose)
    ctx.call_on_close(ctx.obj.close)


#: one module per area, each with a COMMANDS list (one line each keeps merges simple)
COMMAND_MODULES = [
    "inventory",
    "state",
    "dns",
    "render",
    "hooks",
    "power",
    "serve",
    "pipeline",
    "doctor",
    "images",
    "ha",
]
#: entry point group through which add-ons (the lab) add their commands
PLUGIN_GROUP = "provisioner.commands"


def _register() -> None:
    import importlib

    for module_name in COMMAND_MODULES:
        module = importlib.import_module(f"provisioner.cli.{module_name}")
        for command in module.COMMANDS:
            cli.add_command(command)
    from importlib.metadata import entry_points

    for plugin in entry_points(group=PLUGIN_GROUP):
        try:
            register = plugin.load()
        except ImportError as exc:  # an add-on installed without what it needs: skip it
            log.debug("commands of %s not loaded: %s", plugin.value, exc)
            continue
        register(cli)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one clean line; bugs print where the traceback went."""
    err = console(stderr=True)
    try:
        cli.main(args=argv, prog_name="provisioner", standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except InventoryInvalid as exc:
        for problem in exc.problems:
            err.print(f"{exc.path}: {problem}", markup=False)
        err.print(f"error: {exc}", markup=False)
        sys.exit(exc.exit_code)
    except ProvisionerError as exc:
        log.debug("user error", exc_info=True)
        err.print(f"error: {exc}", markup=False)
        sys.exit(exc.exit_code)
    except Exception as exc:
        where = App.log_traceback(traceback.format_exc())
        err.print(
            f"internal error: {type(exc).__name__}: {exc}\n(this is a bug; traceback in {where})",
            markup=False,
        )
        sys.exit(EXIT_INTERNAL)

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
from typing import TYPE_CHECKING

import click

from provisioner import __version__
from provisioner.cli.context import App
from provisioner.cli.globalopts import GlobalOptionsGroup, add_global_options
from provisioner.errors import EXIT_INTERNAL, InventoryInvalid, ProvisionerError
from provisioner.settings import Settings, default_state_dir

if TYPE_CHECKING:
    from rich.console import Console

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


#: every command: name -> (module:attribute, its one-line help). The module is
#: imported only when the command runs (cli/lazy.py); tests/unit/test_cli_lazy.py
#: checks each line against the real command. One entry each keeps merges simple.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("inventory:validate", "Check site.yaml and report every problem at once."),
    "schema": ("inventory:schema", "Print the JSON Schema of site.yaml (for editors)."),
    "nodes": ("inventory:nodes", "The inventory and each node's state, side by side."),
    "enroll": (
        "state:enroll",
        "Record inventory nodes in the state store (state: enrolled), or make discovered "
        "machines nodes:",
    ),
    "discovered": (
        "discovery:discovered",
        "Machines that reported their hardware from a discovery boot (not nodes yet).",
    ),
    "status": ("state:status", "One node's state, reason, reservation and last events."),
    "events": ("state:events", "A node's event log, oldest first."),
    "release": (
        "state:release",
        "Break a node's reservation (when its holder died without releasing it).",
    ),
    "dns": ("dns:dns", "DNS records of the nodes and VIPs (RFC 2136 updates signed with TSIG)."),
    "render": ("render:render", "Print what a node's installer would get."),
    "hooks": ("hooks:hooks", "Post-install hooks of a node."),
    "bundle": (
        "hooks:bundle",
        "Show where a node's HA bundle is (and its files); render or push it.",
    ),
    "inventory": ("hooks:inventory_group", "Inventories for other tools."),
    "power": (
        "power:power",
        "Power status, on, off, cycle or soft-off of nodes, through their BMCs.",
    ),
    "bootdev": (
        "power:bootdev",
        "Set the boot device of a node for the next boot (or every boot).",
    ),
    "serve": (
        "serve:serve",
        "Run DHCP (dnsmasq), TFTP (iPXE binaries) and HTTP (boot scripts, kernels) in the "
        "foreground until",
    ),
    "provision": (
        "pipeline:provision",
        "Install nodes that are not active yet (enrolled, ready or failed).",
    ),
    "reprovision": (
        "pipeline:reprovision",
        "Reinstall one node from scratch (the failed-node case).",
    ),
    "rebuild": (
        "pipeline:rebuild",
        "Reinstall many nodes, controllers in an order that keeps their clusters correct.",
    ),
    "decommission": (
        "pipeline:decommission",
        "Power off, remove DHCP and DNS entries; the node stays in the inventory.",
    ),
    "doctor": (
        "doctor:doctor",
        "What is installed and what is missing for a use, and the command that fixes it.",
    ),
    "deps": ("doctor:deps", "The Debian packages a use needs, on one line (what `make` installs)."),
    "image": ("images:image", "OS images that image profiles install (liveimg)."),
    "db": ("db:db", "The state database: its schema revision and upgrades."),
    "servers": (
        "servers:servers",
        "The `serve --networks` instances: networks, heartbeat, alive or not; each",
    ),
    "ha": ("ha:ha_group", "The controllers' HA layer (VIP, HAProxy, Galera, RabbitMQ, Pacemaker)."),
}
#: entry point group through which add-ons (the lab) add their commands: each
#: entry point is a ``register(cli)`` that adds lazy commands (cli/lazy.py)
PLUGIN_GROUP = "provisioner.commands"


def _register() -> None:
    cli.on_load = add_global_options
    for name, (target, short_help) in COMMANDS.items():
        cli.add_lazy_command(name, f"provisioner.cli.{target}", short_help)
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
    try:
        cli.main(args=argv, prog_name="provisioner", standalone_mode=False)
    except click.exceptions.Abort:
        _stderr().print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except InventoryInvalid as exc:
        err = _stderr()
        for problem in exc.problems:
            err.print(f"{exc.path}: {problem}", markup=False)
        err.print(f"error: {exc}", markup=False)
        sys.exit(exc.exit_code)
    except ProvisionerError as exc:
        log.debug("user error", exc_info=True)
        _stderr().print(f"error: {exc}", markup=False)
        sys.exit(exc.exit_code)
    except Exception as exc:
        where = App.log_traceback(traceback.format_exc())
        _stderr().print(
            f"internal error: {type(exc).__name__}: {exc}\n(this is a bug; traceback in {where})",
            markup=False,
        )
        sys.exit(EXIT_INTERNAL)


def _stderr() -> Console:
    """The error console, made only when there is an error (rich costs start-up time)."""
    from provisioner.cli.output import console

    return console(stderr=True)

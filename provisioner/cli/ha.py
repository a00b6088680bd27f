"""`provisioner ha status`: the controllers' HA layer as an operator checks it first."""

from __future__ import annotations

from pathlib import Path

import click

from provisioner.cli.context import App
from provisioner.cli.output import console, print_json
from provisioner.errors import PartialFailure
from provisioner.roles.delivery import SshPush
from provisioner.roles.hastatus import collect, render_text

pass_app = click.make_pass_decorator(App)


@click.group("ha")
def ha_group() -> None:
    """The controllers' HA layer (VIP, HAProxy, Galera, RabbitMQ, Pacemaker)."""


@ha_group.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.option("--ssh-user", default="root", show_default=True)
@click.option(
    "--ssh-identity",
    type=click.Path(path_type=Path),
    envvar="PROVISIONER_SSH_IDENTITY",
    help="Private key for the controllers (env PROVISIONER_SSH_IDENTITY).",
)
@click.option(
    "--ssh-known-hosts",
    type=click.Path(path_type=Path),
    envvar="PROVISIONER_SSH_KNOWN_HOSTS",
    help="known_hosts file (env PROVISIONER_SSH_KNOWN_HOSTS).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(1, 3600),
    default=180,
    show_default=True,
    help="Seconds for each controller's probe (a loaded or emulated node answers slowly).",
)
@pass_app
def status(
    app: App,
    as_json: bool,
    ssh_user: str,
    ssh_identity: Path | None,
    ssh_known_hosts: Path | None,
    timeout: float,
) -> None:
    """Which controller holds the VIP, HAProxy's backends, Galera, RabbitMQ, Pacemaker.

    Read over SSH from every controller (read-only). Exit 5 when something is not
    whole: no or two VIP holders, a controller unreachable, Galera or RabbitMQ short
    of a member or partitioned, a Pacemaker node offline, an installed backend down."""
    ssh = SshPush(identity=ssh_identity, known_hosts=ssh_known_hosts, timeout_s=timeout)
    result = collect(app.site(), ssh, user=ssh_user)
    if as_json:
        print_json({**result.as_json(), "healthy": result.healthy})
    else:
        console().print(render_text(result), highlight=False, markup=False)
    if not result.healthy:
        raise PartialFailure("ha status: the HA layer is not whole (see above)")


COMMANDS = [ha_group]

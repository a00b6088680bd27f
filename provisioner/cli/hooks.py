"""Hand-off commands: hooks (list, rerun), a node's bundle, the kolla-ansible inventory,
and pushing a bundle over SSH."""

from __future__ import annotations

from pathlib import Path

import click

from provisioner.cli.context import App
from provisioner.cli.output import console, print_json, table
from provisioner.cli.pipeline import run_operation
from provisioner.errors import ProvisionerError, StateError
from provisioner.pipeline.hooks import DEFAULT_TIMEOUT_S, STEP_PREFIX, hook_context, plan_hooks
from provisioner.roles import DeployFacts, generate
from provisioner.roles.bundles import BundleStore
from provisioner.roles.delivery import SshPush
from provisioner.roles.kolla import multinode_inventory
from provisioner.state.machine import NodeState

pass_app = click.make_pass_decorator(App)


@click.group()
def hooks() -> None:
    """Post-install hooks of a node."""


@hooks.command("list")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def hooks_list(app: App, name: str, as_json: bool) -> None:
    """The node's hooks in run order, and which one failed."""
    site = app.site()
    node = site.node(name)
    record = app.store().find(name)
    failed = None
    if record and record.state == NodeState.CONFIGURING_FAILED and record.step:
        failed = record.step.removeprefix(STEP_PREFIX)
    plan = plan_hooks(site, node)
    if as_json:
        print_json(
            [{"name": h.name, "path": str(h.path), "failed": h.name == failed} for h in plan]
        )
        return
    rows = [[h.name, "FAILED" if h.name == failed else "", str(h.path)] for h in plan]
    console().print(table(f"hooks of {name}", ["HOOK", "", "PATH"], rows))


@hooks.command("rerun")
@click.argument("name")
@click.option(
    "--timeout",
    type=float,
    default=DEFAULT_TIMEOUT_S,
    show_default=True,
    help="Seconds each hook may run (without a daemon; the daemon uses its own).",
)
@pass_app
def hooks_rerun(app: App, name: str, timeout: float) -> None:
    """Retry a node's hooks from the one that failed.

    Sent to the daemon when one runs for this state dir (the hooks then run
    there), else run here.
    """
    app.site().node(name)
    record = app.store().get(name)
    if record.state != NodeState.CONFIGURING_FAILED:
        raise StateError(
            f"node {name}: hooks rerun needs 'configuring failed', not {record.state.value}"
        )
    (result,) = run_operation(app, "rerun-hooks", [name], {}, False, True, hook_timeout=timeout)
    if result["state"] != NodeState.ACTIVE.value:
        raise ProvisionerError(f"node {name}: {result['reason'] or result['state']}")
    console().print(f"{name}: active")


@click.command("bundle")
@click.argument("name")
@click.option("--render", is_flag=True, help="Render it now from the inventory and state.")
@click.option(
    "--push",
    "push_to",
    metavar="[USER@]HOST",
    help="Copy it to the node over SSH (system ssh/scp, key auth).",
)
@click.option("--ssh-port", type=int, default=22, show_default=True)
@click.option("--remote-dir", default="/etc/provisioner/bundle", show_default=True)
@click.option("--ssh-identity", type=click.Path(path_type=Path), help="Private key for the push.")
@click.option("--ssh-known-hosts", type=click.Path(path_type=Path), help="known_hosts file.")
@pass_app
def bundle(
    app: App,
    name: str,
    render: bool,
    push_to: str | None,
    ssh_port: int,
    remote_dir: str,
    ssh_identity: Path | None,
    ssh_known_hosts: Path | None,
) -> None:
    """Show where a node's HA bundle is (and its files); render or push it."""
    site = app.site()
    node = site.node(name)
    bundles = BundleStore(app.settings.state_dir)
    if render:
        store = app.store()
        if store.find(name) is None:
            raise ProvisionerError(f"node {name}: not enrolled (run 'provisioner enroll {name}')")
        context = hook_context(site, store, node, app.settings.state_dir, app.settings.site_path)
        bundles.write(name, generate(site, name, DeployFacts.from_context(context)))
    out = console()
    out.print(str(bundles.path(name)))
    for rel in bundles.files(name):
        out.print(f"  {rel}")
    if push_to:
        push = SshPush(
            port=ssh_port,
            remote_dir=remote_dir,
            identity=ssh_identity,
            known_hosts=ssh_known_hosts,
        )
        push.push(name, bundles, push_to)
        out.print(f"{name}: bundle pushed to {push_to}:{remote_dir}")


@click.group("inventory")
def inventory_group() -> None:
    """Inventories for other tools."""


@inventory_group.command("ansible")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write to a file.")
@pass_app
def inventory_ansible(app: App, output: Path | None) -> None:
    """kolla-ansible multinode inventory of the site."""
    text = multinode_inventory(app.site())
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        console().print(f"written {output}")


COMMANDS = [hooks, bundle, inventory_group]

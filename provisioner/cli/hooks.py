"""Hand-off commands: hooks (list, rerun), a node's bundle, the kolla-ansible inventory,
and pushing a bundle over SSH."""

from __future__ import annotations

from pathlib import Path

import click

from provisioner.cli.context import App
from provisioner.cli.output import console, print_json, table
from provisioner.errors import ProvisionerError
from provisioner.pipeline.hooks import (
    DEFAULT_TIMEOUT_S,
    STEP_PREFIX,
    HookRunner,
    hook_context,
    plan_hooks,
)
from provisioner.roles import DeployFacts, generate
from provisioner.roles.bundles import BundleStore
from provisioner.roles.delivery import SshPush
from provisioner.roles.kolla import multinode_inventory
from provisioner.state.machine import NodeState

pass_app = click.make_pass_decorator(App)


def _runner(app: App, timeout: float) -> HookRunner:
    return HookRunner(
        app.site, app.store(), app.settings.state_dir, app.settings.site_path, timeout_s=timeout
    )


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
    help="Seconds each hook may run.",
)
@click.option(
    "--interrupted",
    is_flag=True,
    help="The node is stuck configuring because its runner died: retry it too.",
)
@pass_app
def hooks_rerun(app: App, name: str, timeout: float, interrupted: bool) -> None:
    """Retry a node's hooks from the one that failed."""
    app.site().node(name)
    runner = _runner(app, timeout)
    if interrupted and app.store().get(name).state == NodeState.CONFIGURING:
        runner.mark_interrupted(name)
    outcome = runner.rerun(name)
    out = console()
    for hook in outcome.ran:
        out.print(f"{name}: {hook} ok")
    if not outcome.ok:
        raise ProvisionerError(f"node {name}: {outcome.reason}")
    out.print(f"{name}: active")


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

"""Power commands: power status|on|off|cycle|soft-off, bootdev."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from provisioner.cli.context import App
from provisioner.cli.output import console, print_json, table
from provisioner.errors import ConfigError, PowerFailed, ProvisionerError, UnknownNode
from provisioner.inventory.models import Node
from provisioner.power import PowerDriver, PowerSettings, driver_for
from provisioner.power.fanout import DEFAULT_FANOUT, POWER_OPERATIONS, NodeResult, run_many, then

pass_app = click.make_pass_decorator(App)


def _select(app: App, names: Sequence[str], role: str | None, all_nodes: bool) -> list[Node]:
    site = app.site()
    if sum(bool(x) for x in (names, role, all_nodes)) != 1:
        raise click.UsageError("give NODE names, --role ROLE or --all (exactly one)")
    if all_nodes:
        return list(site.nodes)
    if role:
        if role not in site.roles:
            raise ConfigError(f"role {role}: not in the inventory")
        return [n for n in site.nodes if n.role == role]
    unknown = [n for n in names if n not in site.index.by_name]
    if unknown:
        raise UnknownNode(", ".join(unknown))
    return [site.node(n) for n in names]


def _run(
    app: App,
    nodes: list[Node],
    operation: Callable[[PowerDriver], Any],
    what: str,
    timeout: float,
    fanout: int,
    as_json: bool,
) -> None:
    app.setup_logging()
    site = app.site()
    settings = PowerSettings(timeout=timeout)
    drivers: list[PowerDriver] = []
    failed: list[NodeResult] = []
    for node in nodes:
        try:
            drivers.append(driver_for(site, node, settings, app.settings.state_dir))
        except ProvisionerError as exc:  # e.g. an unresolvable password: that node only
            failed.append(NodeResult(node.name, False, error=str(exc), error_type="ConfigError"))
    err = console(stderr=True)
    with Progress(
        TextColumn(f"{what}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=len(drivers) < 2 or not sys.stderr.isatty(),
    ) as progress:
        task = progress.add_task(what, total=len(drivers))
        results = run_many(
            drivers, operation, fanout=fanout, on_result=lambda _: progress.advance(task)
        )
    results = failed + results
    order = {n.name: i for i, n in enumerate(nodes)}
    results.sort(key=lambda r: order[r.node])
    bmcs = {n.name: f"{n.bmc.driver} {n.bmc.location}" for n in nodes}
    if as_json:
        print_json(
            [
                {
                    "node": r.node,
                    "bmc": bmcs[r.node],
                    "ok": r.ok,
                    "result": r.value,
                    "error": r.error,
                    "error_type": r.error_type,
                    "seconds": round(r.seconds, 3),
                }
                for r in results
            ]
        )
    else:
        rows = [
            [
                r.node,
                bmcs[r.node],
                ("[green]" + str(r.value or "ok") + "[/]") if r.ok else "[red]failed[/]",
                f"{r.seconds:.2f}s",
                r.error or "",
            ]
            for r in results
        ]
        console().print(
            table(
                f"{what}: {len(results)} node(s)",
                ["NODE", "BMC", "RESULT", "TIME", "MESSAGE"],
                rows,
            )
        )
    bad = [r for r in results if not r.ok]
    if bad:
        raise PowerFailed(f"{what}: {len(bad)} of {len(results)} node(s) failed")


def _selection_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.argument("names", nargs=-1, metavar="[NODE]..."),
            click.option("--role", help="Every node of this role."),
            click.option("--all", "all_nodes", is_flag=True, help="Every node in the site."),
            click.option(
                "--timeout",
                type=float,
                default=30.0,
                show_default=True,
                help="Seconds per node, including waiting for the power state.",
            ),
            click.option(
                "--fanout",
                type=click.IntRange(1, 1000),
                default=DEFAULT_FANOUT,
                show_default=True,
                help="BMCs talked to at once.",
            ),
            click.option("--json", "as_json", is_flag=True),
        ]
    ):
        fn = option(fn)
    return fn


#: the same operations the dashboard's power buttons run
OPERATIONS = POWER_OPERATIONS


@click.command()
@click.argument("action", type=click.Choice(list(OPERATIONS)))
@_selection_options
@pass_app
def power(
    app: App,
    action: str,
    names: tuple[str, ...],
    role: str | None,
    all_nodes: bool,
    timeout: float,
    fanout: int,
    as_json: bool,
) -> None:
    """Power status, on, off, cycle or soft-off of nodes, through their BMCs."""
    what, operation = OPERATIONS[action]
    _run(app, _select(app, names, role, all_nodes), operation, what, timeout, fanout, as_json)


@click.command()
@click.argument("name", metavar="NODE")
@click.argument("device", type=click.Choice(["network", "disk"]))
@click.option("--persistent", is_flag=True, help="For every boot, not only the next one.")
@click.option(
    "--boot-mode",
    type=click.Choice(["uefi", "bios"]),
    default=None,
    help="Default: the node's boot_mode in site.yaml.",
)
@click.option("--timeout", type=float, default=30.0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def bootdev(
    app: App,
    name: str,
    device: str,
    persistent: bool,
    boot_mode: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Set the boot device of a node for the next boot (or every boot)."""
    site = app.site()
    node = site.node(name)
    uefi = (boot_mode or site.boot_mode_of(node)) == "uefi"
    what = f"boot device {device}" + (" (persistent)" if persistent else "")
    _run(
        app,
        [node],
        then(lambda d: d.set_boot_device(device, persistent=persistent, uefi=uefi), device),  # type: ignore[arg-type]
        what,
        timeout,
        1,
        as_json,
    )


COMMANDS = [power, bootdev]

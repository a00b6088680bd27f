"""Pipeline commands: provision, reprovision, rebuild, decommission.

With a daemon running for this state dir (`provisioner serve`), the command is
sent over its REST API and its progress followed; otherwise it runs in-process
(hooks included: `hooks rerun` goes the same way, see ``run_operation``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import click

from provisioner.cli.context import App
from provisioner.cli.output import console, print_json, styled_state, table
from provisioner.cli.progress import NodeView, watch
from provisioner.daemon.client import DaemonClient
from provisioner.errors import EXIT_PARTIAL, ProvisionerError
from provisioner.pipeline.operations import NodeResult, Operations

pass_app = click.make_pass_decorator(App)


def _in_process_operations(app: App, hook_timeout: float | None = None) -> Operations:
    from provisioner.pipeline.factory import build_operations

    site = app.site()
    return build_operations(
        app.store(),
        lambda: site,
        app.settings.site_path,
        app.settings.state_dir,
        actor=app.actor,
        hook_timeout=hook_timeout,
    )


def run_operation(
    app: App,
    action: str,
    names: list[str] | None,
    selection: dict[str, Any],
    force: bool,
    as_json: bool,
    hook_timeout: float | None = None,
) -> list[dict[str, Any]]:
    """Run ``action`` in the daemon of this state dir if one runs, else here; the
    per-node results. ``hook_timeout`` (seconds per hook) applies in-process only:
    the daemon runs hooks with its own."""
    client = DaemonClient.discover(app.settings.state_dir)
    if client is not None:
        return _via_daemon(client, action, names, selection, force, as_json)
    return _in_process(app, action, names, selection, force, as_json, hook_timeout)


def _run(
    app: App,
    action: str,
    names: list[str] | None,
    selection: dict[str, Any],
    force: bool,
    as_json: bool,
) -> None:
    results = run_operation(app, action, names, selection, force, as_json)
    _report(results, as_json)
    # a node decommissioned with a reason left something behind (a DNS record that is not
    # the site's): done, but partly; the reason says what
    if any(
        r["state"] not in ("active", "decommissioned")
        or (r["state"] == "decommissioned" and r["reason"])
        for r in results
    ):
        raise SystemExit(EXIT_PARTIAL)


def _via_daemon(
    client: DaemonClient,
    action: str,
    names: list[str] | None,
    selection: dict[str, Any],
    force: bool,
    as_json: bool,
) -> list[dict[str, Any]]:
    job = client.request(
        "POST",
        "/api/v1/operations",
        {"action": action, "nodes": names or [], "force": force, **selection},
    )
    if not as_json:
        console().print(f"sent to the daemon at {client.url}: job {job['id']}")

    def fetch() -> list[NodeView]:
        nodes = {n["name"]: n for n in client.request("GET", "/api/v1/nodes")["nodes"]}
        return [
            NodeView(n, nodes[n]["state"], nodes[n]["step"], nodes[n]["reason"])
            for n in job["nodes"]
            if n in nodes
        ]

    def done() -> bool:
        nonlocal job
        job = client.request("GET", f"/api/v1/jobs/{job['id']}")
        return not job["running"]

    if as_json:
        while not done():
            time.sleep(1)
    else:
        watch(fetch, done)
    if job.get("error"):
        raise ProvisionerError(f"job {job['id']} failed: {job['error']}")
    results: list[dict[str, Any]] = job["results"]
    return results


def _in_process(
    app: App,
    action: str,
    names: list[str] | None,
    selection: dict[str, Any],
    force: bool,
    as_json: bool,
    hook_timeout: float | None = None,
) -> list[dict[str, Any]]:
    ops = _in_process_operations(app, hook_timeout)
    chosen = ops.select(
        names or [], selection.get("role"), selection.get("rack"), selection.get("all", False)
    )
    outcome: list[NodeResult] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            outcome.extend(ops.run(action, chosen, force))
        except BaseException as exc:  # re-raised in the main thread
            failure.append(exc)

    worker = threading.Thread(target=work, name=f"cli-{action}")
    worker.start()
    store = app.store()

    def fetch() -> list[NodeView]:
        views = []
        for name in chosen:
            rec = store.find(name)
            views.append(
                NodeView(
                    name,
                    rec.state.value if rec else None,
                    rec.step if rec else None,
                    rec.reason if rec else None,
                )
            )
        return views

    if as_json:
        worker.join()
    else:
        watch(fetch, lambda: not worker.is_alive())
    worker.join()
    if failure:
        raise failure[0]
    return [r.as_dict() for r in outcome]


def _report(results: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(results)
        return
    rows = [
        [r["name"], styled_state(r["state"]), f"{r['seconds']:.0f}s", r["reason"] or ""]
        for r in results
    ]
    console().print(table("result", ["NODE", "STATE", "TIME", "REASON"], rows))


def _selection_options(f: Any) -> Any:
    for option in (
        click.option("--role", help="Every node of this role."),
        click.option("--rack", help="Every node in this rack."),
        click.option("--all", "all_nodes", is_flag=True, help="Every node of the site."),
    ):
        f = option(f)
    return f


@click.command()
@click.argument("names", nargs=-1)
@_selection_options
@click.option("--json", "as_json", is_flag=True)
@pass_app
def provision(
    app: App,
    names: tuple[str, ...],
    role: str | None,
    rack: str | None,
    all_nodes: bool,
    as_json: bool,
) -> None:
    """Install nodes that are not active yet (enrolled, ready or failed)."""
    _run(
        app,
        "provision",
        list(names),
        {"role": role, "rack": rack, "all": all_nodes},
        False,
        as_json,
    )


@click.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask: this wipes the node's disks.")
@click.option("--force", is_flag=True, help="Override the quorum guard.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def reprovision(app: App, name: str, yes: bool, force: bool, as_json: bool) -> None:
    """Reinstall one node from scratch (the failed-node case)."""
    app.site().node(name)
    if not yes:
        click.confirm(f"Reinstall {name}? Its disks will be wiped.", abort=True)
    _run(app, "reprovision", [name], {}, force, as_json)


@click.command()
@_selection_options
@click.option("--yes", is_flag=True, help="Do not ask: this wipes the nodes' disks.")
@click.option("--force", is_flag=True, help="Override the quorum guard.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def rebuild(
    app: App,
    role: str | None,
    rack: str | None,
    all_nodes: bool,
    yes: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Reinstall many nodes, controllers in an order that keeps their clusters correct."""
    if not (role or rack or all_nodes):
        raise click.UsageError("choose nodes with --role, --rack or --all")
    if not yes:
        what = "every node" if all_nodes else f"role {role}" if role else f"rack {rack}"
        click.confirm(f"Rebuild {what}? Disks will be wiped.", abort=True)
    _run(app, "rebuild", None, {"role": role, "rack": rack, "all": all_nodes}, force, as_json)


@click.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--yes", is_flag=True)
@click.option("--force", is_flag=True, help="Override the quorum guard.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def decommission(app: App, names: tuple[str, ...], yes: bool, force: bool, as_json: bool) -> None:
    """Power off, remove DHCP and DNS entries; the node stays in the inventory."""
    if not yes:
        click.confirm(f"Decommission {', '.join(names)}?", abort=True)
    _run(app, "decommission", list(names), {}, force, as_json)


COMMANDS = [provision, reprovision, rebuild, decommission]

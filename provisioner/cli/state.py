"""State commands: enroll (and discovered, cli/discovery.py), status, events, release."""

from __future__ import annotations

import click

from provisioner.cli import discovery
from provisioner.cli.context import App
from provisioner.cli.output import ago, console, print_json, styled_state, table
from provisioner.errors import ProvisionerError
from provisioner.state.store import EventRecord

pass_app = click.make_pass_decorator(App)


def _event_rows(events: list[EventRecord]) -> list[list[str]]:
    rows = []
    for ev in events:
        what = f"{ev.from_state or '-'} -> {ev.to_state}" if ev.kind == "transition" else ev.kind
        rows.append(
            [
                ev.at.strftime("%Y-%m-%d %H:%M:%S"),
                ev.event or "",
                what,
                ev.message,
                ev.actor,
            ]
        )
    return rows


@click.command()
@click.argument("names", nargs=-1)
@click.option("--all", "all_nodes", is_flag=True, help="Every node of the inventory.")
@click.option("--mac", help="A discovered machine (`provisioner discovered`) to make a node.")
@click.option("--rules", is_flag=True, help="Every discovered machine a site rule matches.")
@click.option("--name", help="With --mac: the node's name ({serial} and {index} allowed).")
@click.option("--role", help="With --mac: the node's role.")
@click.option("--rack", help="With --mac: the node's rack.")
@click.option("--profile", help="With --mac: the node's profile (default: the site's).")
@click.option("--ip", help="With --mac: its fixed address (default: next of discovery.addresses).")
@click.option("--bmc-driver", default="ipmi", show_default=True)
@click.option("--bmc-address", help="Default: the BMC address the machine reported.")
@click.option("--bmc-port", type=int)
@click.option("--bmc-user")
@click.option("--bmc-password-file", help="Secret file, relative to site.yaml's folder.")
@click.option("--bmc-password-env", help="Or: the environment variable holding it.")
@click.option("--dry-run", is_flag=True, help="Say what would be enrolled; write nothing.")
@pass_app
def enroll(
    app: App,
    names: tuple[str, ...],
    all_nodes: bool,
    mac: str | None,
    rules: bool,
    name: str | None,
    role: str | None,
    rack: str | None,
    profile: str | None,
    ip: str | None,
    bmc_driver: str,
    bmc_address: str | None,
    bmc_port: int | None,
    bmc_user: str | None,
    bmc_password_file: str | None,
    bmc_password_env: str | None,
    dry_run: bool,
) -> None:
    """Record inventory nodes in the state store (state: enrolled), or make discovered
    machines nodes: `--mac MAC --name N --role R [--bmc-...]` by hand, `--rules` by the
    site's discovery rules (site.yaml is edited, its comments kept, and validated first)."""
    if mac or rules:
        if names or all_nodes or (mac and rules):
            raise click.UsageError("give one of: node names / --all, --mac, --rules")
        if rules:
            discovery.enroll_by_rules(app, dry_run)
            return
        assert mac is not None
        password = {"file": bmc_password_file, "env": bmc_password_env}
        bmc = {
            "driver": bmc_driver,
            "address": bmc_address,
            "port": bmc_port,
            "user": bmc_user,
            "password": {k: v for k, v in password.items() if v} or None,
        }
        discovery.enroll_by_hand(
            app,
            mac,
            lambda: discovery.wanted_by_hand(name, role, rack, profile, ip, bmc),
            dry_run,
        )
        return
    site = app.site()
    if not names and not all_nodes:
        raise click.UsageError("name nodes, or pass --all (or --mac / --rules)")
    selected = [n.name for n in site.nodes] if all_nodes else [site.node(n).name for n in names]
    store = app.store()
    out = console()
    for node_name in selected:
        created = store.enroll(node_name, actor=app.actor, message="enrolled from site.yaml")
        state = store.get(node_name).state
        note = "enrolled" if created else f"already known ({state.value})"
        out.print(f"{node_name}: {note}")


@click.command()
@click.argument("name")
@click.option("--events", "n_events", default=10, show_default=True, help="Recent events shown.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def status(app: App, name: str, n_events: int, as_json: bool) -> None:
    """One node's state, reason, reservation and last events."""
    site = app.site()
    node = site.node(name)
    store = app.store()
    rec = store.find(name)
    events = store.events(name, limit=n_events) if rec else []
    reservation = store.reservation(name) if rec else None
    if as_json:
        print_json(
            {
                "name": node.name,
                "fqdn": site.fqdn(node),
                "role": node.role,
                "ip": str(node.ip),
                "macs": node.macs,
                "bmc": f"{node.bmc.driver} {node.bmc.location}",
                "state": rec.as_dict() if rec else None,
                "reservation": reservation.as_dict() if reservation else None,
                "events": [e.as_dict() for e in events],
            }
        )
        return
    out = console()
    out.print(
        f"[bold]{node.name}[/] ({site.fqdn(node)}), role {node.role}, IP {node.ip}, "
        f"MAC {', '.join(node.macs)}"
    )
    out.print(f"BMC: {node.bmc.driver} {node.bmc.location} user {node.bmc.user}")
    if rec is None:
        out.print(f"state: {styled_state(None)}")
        return
    out.print(
        f"state: {styled_state(rec.state)} since {rec.state_since:%Y-%m-%d %H:%M:%S} "
        f"({ago(rec.state_since)})" + (f", step {rec.step}" if rec.step else "")
    )
    if rec.reason:
        out.print(f"reason: [red]{rec.reason}[/]", markup=True)
    if reservation:
        out.print(
            f"reserved by {reservation.owner} for '{reservation.operation}' "
            f"since {reservation.acquired_at:%H:%M:%S}"
        )
    out.print(
        table("last events", ["AT (UTC)", "EVENT", "CHANGE", "MESSAGE", "BY"], _event_rows(events))
    )


@click.command()
@click.argument("name")
@click.option("--limit", type=int, default=None, help="Only the newest N events.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def events(app: App, name: str, limit: int | None, as_json: bool) -> None:
    """A node's event log, oldest first."""
    app.site().node(name)
    records = app.store().events(name, limit=limit)
    if as_json:
        print_json([e.as_dict() for e in records])
        return
    console().print(
        table(
            f"events of {name}",
            ["AT (UTC)", "EVENT", "CHANGE", "MESSAGE", "BY"],
            _event_rows(records),
        )
    )


@click.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def release(app: App, name: str, yes: bool) -> None:
    """Break a node's reservation (when its holder died without releasing it)."""
    store = app.store()
    held = store.reservation(name)
    if held is None:
        raise ProvisionerError(f"node {name}: not reserved")
    if not yes:
        click.confirm(
            f"{name} is reserved by {held.owner} for '{held.operation}'. Release it?", abort=True
        )
    store.force_release(name, actor=app.actor)
    console().print(f"{name}: reservation of {held.owner} released")


COMMANDS = [enroll, discovery.discovered, status, events, release]

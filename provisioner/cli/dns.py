"""DNS commands: dns plan, apply, unpublish, check, export, lab."""

from __future__ import annotations

import time
from pathlib import Path

import click

from provisioner.cli.context import App
from provisioner.cli.output import console, print_json, table
from provisioner.ddns.check import expectations, run_checks
from provisioner.ddns.client import DnsServer
from provisioner.ddns.plan import ChangeSet
from provisioner.ddns.publish import (
    DEFAULT_RETRY_FOR,
    apply_plan,
    make_plan,
    site_scope,
    unpublish_node,
)
from provisioner.ddns.zonefile import ZONE_KINDS, render_zone, zone_name
from provisioner.errors import EXIT_CONFLICT, EXIT_PARTIAL, DnsConflict

pass_app = click.make_pass_decorator(App)

retry_option = click.option(
    "--retry-for",
    type=click.FloatRange(min=0),
    default=DEFAULT_RETRY_FOR,
    show_default=True,
    help="Seconds to keep retrying while the DNS server is unreachable.",
)


def _changes_json(changes: ChangeSet) -> dict[str, object]:
    return {
        "changes": [
            {
                "zone": c.zone,
                "name": c.name,
                "owner": c.owner,
                "action": c.action,
                "lines": c.lines(),
            }
            for c in changes.changes
        ],
        "conflicts": [
            {"owner": c.owner, "name": c.name, "message": c.message} for c in changes.conflicts
        ],
        "orphans": changes.orphans,
        "left": [{"owner": c.owner, "name": c.name, "message": c.message} for c in changes.left],
    }


def _print_changes(changes: ChangeSet) -> None:
    out = console()
    if not changes.changes and not changes.conflicts:
        out.print("DNS is up to date: no changes")
    for change in changes.changes:
        for line in change.lines():
            out.print(f"{change.owner or 'dns'}: {line}", markup=False)
    for name in changes.orphans:
        out.print(
            f"orphan (published by this site, no longer in site.yaml): {name} (--prune removes it)",
            markup=False,
        )
    for conflict in changes.conflicts:
        out.print(f"CONFLICT {conflict}", markup=False)
    for item in changes.left:
        out.print(f"LEFT {item}", markup=False)
    if changes.changes:
        out.print(f"{len(changes.changes)} name(s) to change")


@click.group()
def dns() -> None:
    """DNS records of the nodes and VIPs (RFC 2136 updates signed with TSIG)."""


@dns.command()
@click.argument("names", nargs=-1)
@click.option(
    "--prune", is_flag=True, help="Also remove this site's records of nodes no longer in site.yaml."
)
@click.option("--json", "as_json", is_flag=True)
@retry_option
@pass_app
def plan(app: App, names: tuple[str, ...], prune: bool, as_json: bool, retry_for: float) -> None:
    """Show the changes against what the server holds now (nothing is sent)."""
    app.setup_logging()
    site = app.site()
    server = DnsServer.from_site(site)
    planned = make_plan(site, server, site_scope(site, names, prune), retry_for)
    if as_json:
        print_json(_changes_json(planned.changes))
    else:
        _print_changes(planned.changes)
    if planned.changes.conflicts:
        raise SystemExit(EXIT_CONFLICT)


@dns.command()
@click.argument("names", nargs=-1)
@click.option(
    "--prune", is_flag=True, help="Also remove this site's records of nodes no longer in site.yaml."
)
@retry_option
@pass_app
def apply(app: App, names: tuple[str, ...], prune: bool, retry_for: float) -> None:
    """Publish every node and VIP (or the named nodes); nothing if any conflict."""
    app.setup_logging()
    site = app.site()
    server = DnsServer.from_site(site)
    planned = make_plan(site, server, site_scope(site, names, prune), retry_for)
    if planned.changes.conflicts:
        raise DnsConflict(planned.changes.conflicts)
    _print_changes(planned.changes)
    report = apply_plan(site, server, planned, retry_for)
    console().print(f"applied {report.changes} change(s) in {report.messages} update message(s)")


@dns.command()
@click.argument("names", nargs=-1, required=True)
@retry_option
@pass_app
def unpublish(app: App, names: tuple[str, ...], retry_for: float) -> None:
    """Remove nodes' A, PTR and ownership records (decommission); idempotent.

    A record another writer made (a PTR to the node, or at its address) is left in
    place and listed; the command then exits 5 (partial): the rest is done."""
    app.setup_logging()
    site = app.site()
    server = DnsServer.from_site(site)
    left = 0
    for name in names:
        report = unpublish_node(site, name, server, retry_for)
        console().print(f"{name}: {report.changes} DNS change(s)")
        for item in report.left:
            console().print(f"LEFT {item}", markup=False)
        left += len(report.left)
    if left:
        console().print(f"{left} record(s) not published by provisioner left in place")
        raise SystemExit(EXIT_PARTIAL)


@dns.command()
@click.option("--json", "as_json", is_flag=True)
@retry_option
@pass_app
def check(app: App, as_json: bool, retry_for: float) -> None:
    """Verify every node and VIP resolves forward and reverse on the server."""
    app.setup_logging()
    site = app.site()
    server = DnsServer.from_site(site)
    results = run_checks(server, expectations(site), retry_for)
    failed = [r for r in results if not r.ok]
    if as_json:
        print_json(
            [
                {
                    "owner": r.expectation.owner,
                    "name": r.expectation.name,
                    "type": r.expectation.rtype,
                    "expected": r.expectation.expected,
                    "found": list(r.found),
                    "ok": r.ok,
                    "problem": "" if r.ok else r.problem,
                }
                for r in results
            ]
        )
    else:
        rows = [
            [
                r.expectation.owner,
                r.expectation.name,
                r.expectation.rtype,
                ", ".join(r.found),
                "[green]ok[/]" if r.ok else f"[red]{r.problem}[/]",
            ]
            for r in results
        ]
        out = console()
        out.print(
            table(f"DNS at {server.where}", ["OWNER", "NAME", "TYPE", "ANSWER", "RESULT"], rows)
        )
        out.print(f"{len(results) - len(failed)}/{len(results)} answers as expected")
    if failed:
        raise SystemExit(EXIT_PARTIAL)


@dns.command()
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), help="Write <zone>.db files here."
)
@click.option("--serial", type=int, default=None, help="SOA serial [default: seconds since 1970].")
@pass_app
def export(app: App, out_dir: Path | None, serial: int | None) -> None:
    """Zone files for the forward and reverse zones (sites without dynamic DNS)."""
    site = app.site()
    serial = int(time.time()) if serial is None else serial
    for kind in ZONE_KINDS:
        text = render_zone(site, kind, serial)
        if out_dir is None:
            click.echo(text, nl=False)
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{zone_name(site, kind).rstrip('.')}.db"
        path.write_text(text, encoding="utf-8")
        click.echo(f"wrote {path}")


COMMANDS = [dns]

"""DNS commands: dns plan, apply, unpublish, check, export, lab."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from provisioner import programs
from provisioner.cli.context import App
from provisioner.dnscheck import expectations, run_checks
from provisioner.dnsclient import DnsServer
from provisioner.dnslab import render_bind_config
from provisioner.dnsplan import ChangeSet
from provisioner.dnspublish import (
    DEFAULT_RETRY_FOR,
    DnsConflict,
    apply_plan,
    make_plan,
    site_scope,
    unpublish_node,
)
from provisioner.output import console, print_json, table
from provisioner.zonefile import ZONE_KINDS, render_zone, zone_name

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
        raise SystemExit(1)


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
    """Remove nodes' A, PTR and ownership records (decommission); idempotent."""
    app.setup_logging()
    site = app.site()
    server = DnsServer.from_site(site)
    for name in names:
        report = unpublish_node(site, name, server, retry_for)
        console().print(f"{name}: {report.changes} DNS change(s)")


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
        raise SystemExit(1)


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


@dns.command("lab")
@click.option(
    "--workdir", type=click.Path(path_type=Path), required=True, help="Where config goes."
)
@click.option("--port", type=click.IntRange(1, 65535), default=5300, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
@click.option("--run", is_flag=True, help="Then run named in the foreground (Ctrl-C stops it).")
@pass_app
def lab(app: App, workdir: Path, port: int, address: str, run: bool) -> None:
    """A BIND config serving this site's zones, updatable with its TSIG key."""
    site = app.site()
    config = render_bind_config(site, workdir, port, address)
    out = console()
    out.print(f"wrote {config.conf} (zones {', '.join(config.zones)})", markup=False)
    if (str(site.dns.server), site.dns.port) != (address, port):
        out.print(
            f"note: site.yaml sends updates to {site.dns.server}:{site.dns.port}, "
            f"not {address}:{port}",
            markup=False,
        )
    argv = config.argv(programs.path("named"))
    out.print(" ".join(argv), markup=False)
    if run:
        sys.stdout.flush()
        os.execv(argv[0], argv)


COMMANDS = [dns]

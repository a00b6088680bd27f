"""DNS commands: dns plan, apply, unpublish, check, export, lab."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from provisioner.cli.context import App
from provisioner.cli.lazy import LazyGroup
from provisioner.errors import EXIT_CONFLICT, EXIT_PARTIAL, DnsConflict

if TYPE_CHECKING:  # the commands import what they use: `dns apply` skips the rest
    from provisioner.ddns.client import DnsServer
    from provisioner.ddns.plan import ChangeSet
    from provisioner.ddns.update import ApplyReport
    from provisioner.inventory import Site

log = logging.getLogger(__name__)

DEFAULT_RETRY_FOR = 30.0  # provisioner.ddns.publish.DEFAULT_RETRY_FOR (a unit test checks)

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


def _print_outcome(
    lines: list[str],
    count: int,
    conflicts: list[str],
    orphans: list[str],
    left: list[str],
) -> None:
    """What a plan found, as plain lines (rich's console cost 1 s at 2,000 changes)."""
    out = [] if count or conflicts else ["DNS is up to date: no changes"]
    out += lines
    out += [
        f"orphan (published by this site, no longer in site.yaml): {name} (--prune removes it)"
        for name in orphans
    ]
    out += [f"CONFLICT {c}" for c in conflicts]
    out += [f"LEFT {item}" for item in left]
    if count:
        out.append(f"{count} name(s) to change")
    sys.stdout.write("".join(line + "\n" for line in out))
    sys.stdout.flush()


def _print_changes(changes: ChangeSet) -> None:
    lines = [f"{c.owner or 'dns'}: {line}" for c in changes.changes for line in c.lines()]
    _print_outcome(
        lines,
        len(changes.changes),
        [str(c) for c in changes.conflicts],
        changes.orphans,
        [str(c) for c in changes.left],
    )


@click.group(cls=LazyGroup)
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
    from provisioner.cli.output import print_json
    from provisioner.ddns.client import DnsServer
    from provisioner.ddns.publish import make_plan, site_scope

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
    from provisioner.ddns import memo

    app.setup_logging()
    memo_path = app.settings.state.dns_memo
    key = memo.site_key(app.settings.site_path, names, prune)
    kept = memo.still_true(memo_path, key)
    if kept is not None:  # same site, zones unchanged since they were as it wants
        _print_outcome([], 0, [], kept.orphans, [" ".join(item) for item in kept.left])
        click.echo("applied 0 change(s) in 0 update message(s)")
        return

    from provisioner.ddns.client import DnsServer
    from provisioner.ddns.publish import apply_plan, make_plan, site_scope

    site = app.site()
    server = DnsServer.from_site(site)
    planned = make_plan(site, server, site_scope(site, names, prune), retry_for)
    if planned.changes.conflicts:
        raise DnsConflict(planned.changes.conflicts)
    _print_changes(planned.changes)
    report = apply_plan(site, server, planned, retry_for)
    click.echo(f"applied {report.changes} change(s) in {report.messages} update message(s)")
    if key is not None:
        _remember(memo_path, key, site, server, report, prune)


def _remember(
    path: Path,
    key: str,
    site: Site,
    server: DnsServer,
    report: ApplyReport,
    prune: bool,
) -> None:
    """Keep the memo of a zone pair now as the site wants it (see ddns/memo.py).

    With no change sent, the serials the transfers came with are the zones'. After
    changes, the zones' serials now must be those plus one per accepted update
    message: anything else means another writer came in between, and the next
    run reads the zones again instead.
    """
    from provisioner.ddns import memo

    if None in report.serials.values() or len(report.serials) != 2:
        return  # not read by transfers: no serial to pin
    ref = site.dns.tsig.secret
    found = memo.Memo(
        key=key,
        address=server.address,
        port=server.port,
        keyname=server.keyname.to_text(),
        algorithm=server.algorithm.to_text(),
        secret_file=str(ref.path(site.base_dir)) if ref.file is not None else None,
        secret_env=ref.env,
        zones={zone: int(serial or 0) for zone, serial in report.serials.items()},
        orphans=[] if prune else list(report.orphans),
        left=[[c.owner, c.name, c.message] for c in report.left],
    )
    if report.changes:
        if report.left or report.orphans:
            return  # what the next run prints may differ: let it read the zones
        try:
            secret = site.secret(ref, "dns: tsig.secret").get_secret_value()
            now = memo.soa_serials(found, secret)
        except Exception:  # no memo; the next run reads the zones
            log.debug("dns memo not written", exc_info=True)
            return
        expected = {z: (s + report.accepted.get(z, 0)) % 2**32 for z, s in found.zones.items()}
        if now != expected:
            log.debug("dns memo not written: serials %s, expected %s", now, expected)
            return
        found.zones = now
    memo.save(path, found)


@dns.command()
@click.argument("names", nargs=-1, required=True)
@retry_option
@pass_app
def unpublish(app: App, names: tuple[str, ...], retry_for: float) -> None:
    """Remove nodes' A, PTR and ownership records (decommission); idempotent.

    A record another writer made (a PTR to the node, or at its address) is left in
    place and listed; the command then exits 5 (partial): the rest is done."""
    from provisioner.cli.output import console
    from provisioner.ddns.client import DnsServer
    from provisioner.ddns.publish import unpublish_node

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
    from provisioner.cli.output import console, print_json, table
    from provisioner.ddns.check import expectations, run_checks
    from provisioner.ddns.client import DnsServer

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
    from provisioner.ddns.zonefile import ZONE_KINDS, render_zone, zone_name

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

"""`provisioner discovered` and the discovery side of `provisioner enroll`.

Racking new hardware: unknown machines report themselves (bootserver/
discovery_routes.py); these commands list them and turn them into nodes, by
hand or by the site's rules, writing site.yaml with its comments kept
(discovery/enrolment.py) and recording the node as enrolled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from ipaddress import IPv4Address

import click
from rich.markup import escape

from provisioner.cli.context import App
from provisioner.cli.output import ago, console, print_json, table
from provisioner.discovery.enrolment import write_node
from provisioner.discovery.report import HardwareReport, parse_report
from provisioner.discovery.rules import Wanted, first_rule, node_entry
from provisioner.errors import EnrolmentError, PartialFailure, UnknownDiscovered
from provisioner.inventory.macs import normalise_mac
from provisioner.inventory.models import DiscoveryBmc
from provisioner.state.discovered import Discovered, Discoveries

pass_app = click.make_pass_decorator(App)


def _report(found: Discovered) -> HardwareReport:
    return parse_report(found.report)


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--all", "show_all", is_flag=True, help="Also machines already enrolled.")
@pass_app
def discovered(app: App, as_json: bool, show_all: bool) -> None:
    """Machines that reported their hardware from a discovery boot (not nodes yet)."""
    site = app.site()
    rows = [d for d in Discoveries(app.store()).all() if show_all or d.enrolled_as is None]
    if as_json:
        out = []
        for d in rows:
            match = first_rule(site, _report(d))
            out.append(
                {
                    "mac": d.mac,
                    "source": d.source,
                    "first_seen": d.first_seen.isoformat(),
                    "last_seen": d.last_seen.isoformat(),
                    "reports": d.reports,
                    "enrolled_as": d.enrolled_as,
                    "rule": match[0] if match else None,
                    "report": d.report,
                }
            )
        print_json(out)
        return
    lines = []
    for d in rows:
        report = _report(d)
        match = first_rule(site, report)
        rule = f"rule {match[0]} -> {match[1].enroll.role}" if match else "no rule"
        lines.append(
            [
                d.mac,
                escape(report.summary()),  # machine-made text: never rich markup
                d.enrolled_as or rule,
                ago(d.last_seen),
            ]
        )
    console().print(table("Discovered machines", ["MAC", "HARDWARE", "ENROLMENT", "SEEN"], lines))


def _enrol(app: App, found: Discovered, wanted: Wanted, dry_run: bool) -> str:
    """Write one machine into site.yaml and record it; the node's name."""
    site = app.site()
    who = f"machine {found.mac}"
    if found.enrolled_as is not None:
        raise EnrolmentError(f"{who}: already enrolled as node {found.enrolled_as}")
    entry = node_entry(site, _report(found), wanted)
    name = str(entry["name"])
    if dry_run:
        console().print(f"{found.mac}: would enrol as {name} ({entry['role']}, {entry['ip']})")
        return name
    write_node(app.settings.site_path, entry, who)
    app.reload_site()
    app.store().enroll(name, actor=app.actor, message=f"enrolled from discovery ({found.mac})")
    Discoveries(app.store()).mark_enrolled(found.mac, name)
    console().print(f"{found.mac}: enrolled as {name} ({entry['role']}, {entry['ip']})")
    return name


def enroll_by_hand(app: App, mac: str, wanted: Callable[[], Wanted], dry_run: bool) -> None:
    """``wanted`` is built once the machine is known (an unknown MAC is the first error)."""
    normal = normalise_mac(mac)
    found = Discoveries(app.store()).get(normal) if normal else None
    if found is None:
        raise UnknownDiscovered(f"machine {mac}: not discovered (see `provisioner discovered`)")
    _enrol(app, found, wanted(), dry_run)


def enroll_by_rules(app: App, dry_run: bool) -> None:
    """Every waiting machine a rule matches; each failure is reported, the others go on."""
    failures = []
    waiting = [d for d in Discoveries(app.store()).all() if d.enrolled_as is None]
    for found in waiting:
        match = first_rule(app.site(), _report(found))
        if match is None:
            console().print(f"{found.mac}: no rule matches; left in discovery")
            continue
        try:
            _enrol(app, found, Wanted.of_rule(match[1]), dry_run)
        except EnrolmentError as exc:
            console(stderr=True).print(f"error: rule {match[0]}: {escape(str(exc))}")
            failures.append(str(exc))
    if failures:
        raise PartialFailure(f"{len(failures)} machine(s) not enrolled (see above)")


def wanted_by_hand(
    name: str | None,
    role: str | None,
    rack: str | None,
    profile: str | None,
    ip: str | None,
    bmc: Mapping[str, object],
) -> Wanted:
    if not name or not role:
        raise click.UsageError("--mac needs --name and --role (or use --rules)")
    try:
        bmc_model = DiscoveryBmc.model_validate({k: v for k, v in bmc.items() if v is not None})
        address = IPv4Address(ip) if ip else None
    except ValueError as exc:
        raise click.UsageError(f"--bmc-* / --ip: {exc}") from exc
    return Wanted(name, role, bmc_model, rack, profile, address)

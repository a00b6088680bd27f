"""Inventory commands: validate, schema, nodes."""

from __future__ import annotations

import click

from provisioner.cli.context import App
from provisioner.cli.output import ago, console, print_json, styled_state, table
from provisioner.errors import EXIT_CONFIG
from provisioner.inventory.loader import validate_site_file
from provisioner.inventory.schema import site_schema_text

pass_app = click.make_pass_decorator(App)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@pass_app
def validate(app: App, as_json: bool, strict: bool) -> None:
    """Check site.yaml and report every problem at once."""
    path = app.settings.site_path
    site, problems = validate_site_file(path, app.site_cache_dir())
    errors = [p for p in problems if p.severity == "error" or strict]
    if as_json:
        print_json(
            {
                "site": str(path),
                "valid": site is not None and not errors,
                "nodes": len(site.nodes) if site else None,
                "problems": [p.as_dict() for p in problems],
            }
        )
    else:
        out = console()
        for problem in problems:
            out.print(f"{path}: {problem}", markup=False)
        if site is not None and not errors:
            kinds: dict[str, int] = {}
            for node in site.nodes:
                kind = site.role_kind(node.role)
                kinds[kind] = kinds.get(kind, 0) + 1
            summary = ", ".join(f"{n} {k}" for k, n in kinds.items())
            out.print(f"{path}: OK: site {site.site.name}, {len(site.nodes)} nodes ({summary})")
    if site is None or errors:
        if not as_json:
            count = len(errors) if site is not None else len(problems)
            console(stderr=True).print(f"error: {path}: {count} problem(s) found", markup=False)
        raise SystemExit(EXIT_CONFIG)


@click.command()
def schema() -> None:
    """Print the JSON Schema of site.yaml (for editors)."""
    click.echo(site_schema_text(), nl=False)


@click.command()
@click.option("--role", help="Only nodes of this role.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def nodes(app: App, role: str | None, as_json: bool) -> None:
    """The inventory and each node's state, side by side."""
    site = app.site()
    records = {r.name: r for r in app.store().all()}
    selected = [n for n in site.nodes if role is None or n.role == role]
    if as_json:
        rows = []
        for node in selected:
            rec = records.get(node.name)
            rows.append(
                {
                    "name": node.name,
                    "fqdn": site.fqdn(node),
                    "role": node.role,
                    "rack": node.rack,
                    "ip": str(node.ip),
                    "macs": node.macs,
                    "bmc": {
                        "driver": node.bmc.driver,
                        "address": node.bmc.address,
                        "port": node.bmc.effective_port,
                        "user": node.bmc.user,
                    },
                    "profile": site.profile_of(node),
                    "boot_mode": site.boot_mode_of(node),
                    "state": rec.state.value if rec else None,
                    "reason": rec.reason if rec else None,
                }
            )
        print_json(rows)
        return
    rows_out = []
    for node in selected:
        rec = records.get(node.name)
        rows_out.append(
            [
                node.name,
                node.role,
                node.rack or "",
                str(node.ip),
                ", ".join(node.macs),
                f"{node.bmc.driver} {node.bmc.location}",
                site.profile_of(node) or "",
                site.boot_mode_of(node),
                styled_state(rec.state if rec else None),
                (rec.reason or ago(rec.state_since)) if rec else "",
            ]
        )
    orphans = sorted(set(records) - site.index.by_name.keys())
    out = console()
    out.print(
        table(
            f"site {site.site.name}: {len(selected)} node(s)",
            [
                "NODE",
                "ROLE",
                "RACK",
                "IP",
                "MAC",
                "BMC",
                "PROFILE",
                "BOOT",
                "STATE",
                "REASON / SINCE",
            ],
            rows_out,
        )
    )
    if orphans and role is None:
        out.print(f"[yellow]in the state store but not in site.yaml: {', '.join(orphans)}[/]")


COMMANDS = [validate, schema, nodes]

"""`provisioner servers`: the boot servers sharing the state database, and who serves what."""

from __future__ import annotations

import click

from provisioner.cli.context import App
from provisioner.cli.output import ago, console, print_json, table
from provisioner.pipeline.takeover import in_flight
from provisioner.state.servers import Servers

pass_app = click.make_pass_decorator(App)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def servers(app: App, as_json: bool) -> None:
    """The `serve --networks` instances: networks, heartbeat, alive or not; each
    provisioning network with its live servers, and nodes in flight that nobody serves."""
    site, store = app.site(), app.store()
    registry = Servers(store)
    found = registry.all()
    serving = registry.serving()
    flying = in_flight(store, site)
    networks = {
        name: {
            "servers": serving.get(name, []),
            "in_flight": sorted(n for n, net in flying.items() if net == name),
        }
        for name in site.provisioning_networks()
    }
    unserved = {
        name: info["in_flight"]
        for name, info in networks.items()
        if not info["servers"] and info["in_flight"]
    }
    if as_json:
        print_json(
            {
                "servers": [s.as_dict() for s in found],
                "networks": networks,
                "unserved": unserved,
            }
        )
        return
    out = console()
    out.print(
        table(
            "boot servers",
            ["NAME", "NETWORKS", "HOST", "PID", "HEARTBEAT", "STATE", "API"],
            [
                [
                    s.name,
                    ",".join(s.networks),
                    s.host,
                    str(s.pid),
                    ago(s.heartbeat_at),
                    "alive" if s.alive else ("stopped" if s.stopped else "DEAD (silent)"),
                    s.url,
                ]
                for s in found
            ],
        )
    )
    out.print(
        table(
            "provisioning networks",
            ["NETWORK", "LIVE SERVERS", "NODES IN FLIGHT"],
            [
                [name, ", ".join(info["servers"]) or "-", ", ".join(info["in_flight"]) or "-"]
                for name, info in networks.items()
            ],
        )
    )
    for name, nodes in sorted(unserved.items()):
        console(stderr=True).print(
            f"warning: network {name}: no live boot server; stuck in flight: {', '.join(nodes)}",
            markup=False,
        )


COMMANDS = [servers]

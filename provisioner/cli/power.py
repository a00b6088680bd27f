"""Power commands: power status|on|off|cycle|soft-off, bootdev, vbmc serve."""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import SecretStr, ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from provisioner.cli.context import App
from provisioner.errors import ConfigError, ProvisionerError, UnknownNode
from provisioner.inventory.models import Node, Site
from provisioner.inventory.secrets import SecretRef
from provisioner.output import console, print_json, table
from provisioner.power import PowerDriver, PowerSettings, driver_for
from provisioner.power.fanout import DEFAULT_FANOUT, NodeResult, run_many
from provisioner.power.virtual.serve import VbmcSpec, serve_many
from provisioner.power.virtual.simmachine import SimSpec

pass_app = click.make_pass_decorator(App)


class PowerFailed(ProvisionerError):
    """Some nodes of a power command failed (each is reported in the table)."""


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
    unknown = [n for n in names if n not in {node.name for node in site.nodes}]
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
            drivers.append(driver_for(site, node, settings))
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
    bmcs = {n.name: f"{n.bmc.driver} {n.bmc.address}:{n.bmc.effective_port}" for n in nodes}
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


def _then(step: Callable[[PowerDriver], None], result: str) -> Callable[[PowerDriver], str]:
    def run(driver: PowerDriver) -> str:
        step(driver)
        return result

    return run


OPERATIONS: dict[str, tuple[str, Callable[[PowerDriver], Any]]] = {
    "status": ("power status", lambda d: d.power_state()),
    "on": ("power on", _then(lambda d: d.power_on(), "on")),
    "off": ("power off", _then(lambda d: d.power_off(), "off")),
    "cycle": ("power cycle", _then(lambda d: d.power_cycle(), "on")),
    "soft-off": ("soft power off", _then(lambda d: d.soft_off(), "off")),
}


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
        _then(lambda d: d.set_boot_device(device, persistent=persistent, uefi=uefi), device),  # type: ignore[arg-type]
        what,
        timeout,
        1,
        as_json,
    )


@click.group()
def vbmc() -> None:
    """Virtual BMCs (IPMI over LAN) for the built-in lab, demos and benchmarks."""


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def _specs_from_config(path: Path, state_dir: Path) -> list[VbmcSpec]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    defaults = data.get("defaults", {})
    specs = []
    for i, entry in enumerate(data.get("bmcs", [])):
        merged = {**defaults, **entry}
        where = f"{path}: bmcs[{i}] ({merged.get('name', '?')})"
        try:
            ref = SecretRef.model_validate(merged.pop("password"))
            password = ref.resolve(path.parent, f"{where}: password")
            merged.setdefault("state_dir", str(state_dir))
            specs.append(VbmcSpec.model_validate({**merged, "password": password}))
        except KeyError:
            raise ConfigError(
                f"{where}: password: required ({{file: ...}} or {{env: ...}})"
            ) from None
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"{where}: {field}: {first['msg']}") from exc
    if not specs:
        raise ConfigError(f"{path}: bmcs: no virtual BMC listed")
    return specs


def _parse_behaviours(values: tuple[str, ...], site: Site) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, behaviour = value.partition("=")
        if not sep or behaviour not in (
            "normal",
            "never-callback",
            "install-fails",
            "no-network-boot",
        ):
            raise click.UsageError(f"--sim-behaviour {value}: want NODE=BEHAVIOUR")
        out[site.node(name).name] = behaviour
    return out


def _sim_spec(site: Site, node: Node, behaviours: dict[str, str]) -> SimSpec:
    prov = site.network.provisioner
    return SimSpec.model_validate(
        {
            "name": node.name,
            "mac": node.primary_mac,
            "boot_mode": site.boot_mode_of(node),
            "http_base": f"http://{prov.address}:{prov.http_port}",
            "tftp_host": str(prov.address),
            "tftp_port": prov.tftp_port,
            "behaviour": behaviours.get(node.name, "normal"),
        }
    )


@vbmc.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="vbmc YAML file.")
@click.option(
    "--from-site", is_flag=True, help="One simulated BMC per site node with a loopback BMC."
)
@click.option("--simulated", "count", type=int, default=0, help="Serve N simulated BMCs.")
@click.option("--base-port", type=int, default=16200, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
@click.option("--user", default="admin", show_default=True)
@click.option("--password-file", type=click.Path(path_type=Path), help="For --simulated.")
@click.option(
    "--vbmc-dir", type=click.Path(path_type=Path), help="BMC state [default: STATE_DIR/vbmc]."
)
@click.option(
    "--sim-firmware",
    is_flag=True,
    help="With --from-site: nodes run simulated firmware + installer against the boot server.",
)
@click.option(
    "--sim-behaviour",
    multiple=True,
    metavar="NODE=BEHAVIOUR",
    help="never-callback, install-fails or no-network-boot for one simulated node.",
)
@pass_app
def serve(
    app: App,
    sim_firmware: bool,
    sim_behaviour: tuple[str, ...],
    config_path: Path | None,
    from_site: bool,
    count: int,
    base_port: int,
    address: str,
    user: str,
    password_file: Path | None,
    vbmc_dir: Path | None,
) -> None:
    """Run virtual BMCs, one process and one UDP port each, until interrupted."""
    app.setup_logging()
    state_dir = vbmc_dir or app.settings.state_dir / "vbmc"
    if sum(bool(x) for x in (config_path, from_site, count)) != 1:
        raise click.UsageError("give exactly one of --config, --from-site or --simulated N")
    if config_path:
        specs = _specs_from_config(config_path, state_dir)
    elif from_site:
        site = app.site()
        behaviours = _parse_behaviours(sim_behaviour, site)
        specs = []
        for node in site.nodes:
            if node.bmc.driver == "redfish" or not _is_loopback(node.bmc.address):
                continue
            password = node.bmc.password.resolve(site.base_dir, f"node {node.name}: bmc.password")
            specs.append(
                VbmcSpec(
                    name=node.name,
                    address=node.bmc.address,
                    port=node.bmc.effective_port,
                    user=node.bmc.user,
                    password=password,
                    state_dir=state_dir,
                    sim=_sim_spec(site, node, behaviours) if sim_firmware else None,
                )
            )
        if not specs:
            raise ConfigError("no node has an IPMI BMC on a loopback address")
    else:
        if password_file is None:
            raise click.UsageError("--simulated needs --password-file")
        secret = SecretRef(file=str(password_file)).resolve(Path.cwd(), "--password-file")
        specs = [
            VbmcSpec(
                name=f"vnode{i:03d}",
                address=address,
                port=base_port + i,
                user=user,
                password=SecretStr(secret.get_secret_value()),
                state_dir=state_dir,
            )
            for i in range(count)
        ]
    out = console()

    def ready() -> None:
        out.print(
            f"serving {len(specs)} virtual BMC(s) on "
            f"{specs[0].address}:{min(s.port for s in specs)}-{max(s.port for s in specs)}; "
            "Ctrl-C to stop",
            markup=False,
        )
        sys.stdout.flush()

    code = serve_many(specs, on_ready=ready)
    if code:
        raise ProvisionerError("a virtual BMC exited; see its log in " + str(state_dir))


COMMANDS = [power, bootdev, vbmc]

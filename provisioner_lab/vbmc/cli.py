"""`provisioner vbmc serve`: virtual BMCs (IPMI over LAN) for the lab, demos and benchmarks."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
import yaml
from pydantic import SecretStr, ValidationError

from provisioner.cli.context import App
from provisioner.errors import ConfigError, ProvisionerError
from provisioner_lab.vbmc.serve import VbmcSpec, serve_many
from provisioner_lab.vbmc.simmachine import SimSpec

if TYPE_CHECKING:  # `vbmc serve --simulated` needs neither the site models nor rich
    from provisioner.inventory.models import Node, Site

pass_app = click.make_pass_decorator(App)


@click.group()
def vbmc() -> None:
    """Virtual BMCs (IPMI over LAN) for the built-in lab, demos and benchmarks."""


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def _specs_from_config(path: Path, state_dir: Path) -> list[VbmcSpec]:
    from provisioner.inventory.secrets import SecretRef

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
    prov = site.network_of(node).provisioner  # the boot server of the node's network
    return SimSpec.model_validate(
        {
            "name": node.name,
            "mac": node.primary_mac,
            "boot_mode": site.boot_mode_of(node),
            "http_base": prov.base_url,
            "tftp_host": str(prov.address),
            "tftp_port": prov.tftp_port,
            "behaviour": behaviours.get(node.name, "normal"),
            "ip": str(node.ip),
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
    state_dir = vbmc_dir or app.settings.state.vbmc
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
            password = site.secret(node.bmc.password, f"node {node.name}: bmc.password")
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
        from provisioner.inventory.secrets import SecretRef

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

    def ready() -> None:
        click.echo(
            f"serving {len(specs)} virtual BMC(s) on "
            f"{specs[0].address}:{min(s.port for s in specs)}-{max(s.port for s in specs)}; "
            "Ctrl-C to stop"
        )
        sys.stdout.flush()

    code = serve_many(specs, on_ready=ready)
    if code:
        raise ProvisionerError("a virtual BMC exited; see its log in " + str(state_dir))

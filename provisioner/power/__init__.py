"""Power control through BMCs: one PowerDriver per node, IPMI or Redfish.

``driver_for(site, node)`` picks the backend from ``node.bmc.driver``: ``ipmi``
and ``virtual`` (the project's virtual BMC speaks IPMI) use IpmiPower,
``redfish`` uses RedfishPower, ``fake`` FakePower (state in a file under the
state directory, for trying things without hardware). The password is resolved
here, kept as a SecretStr.
"""

from __future__ import annotations

from pathlib import Path

from provisioner.errors import (
    BmcAuthError,
    BmcCommandError,
    BmcTimeout,
    BmcTransientError,
    BmcUnreachable,
    PowerError,
)
from provisioner.inventory.models import Node, Site
from provisioner.power.base import BmcEndpoint, PowerDriver, PowerSettings

__all__ = [
    "BmcAuthError",
    "BmcCommandError",
    "BmcEndpoint",
    "BmcTimeout",
    "BmcTransientError",
    "BmcUnreachable",
    "PowerDriver",
    "PowerError",
    "PowerSettings",
    "driver_for",
    "endpoint_for",
]


def endpoint_for(site: Site, node: Node) -> BmcEndpoint:
    bmc = node.bmc
    password = site.secret(bmc.password, f"node {node.name}: bmc.password")
    return BmcEndpoint(
        node=node.name,
        driver=bmc.driver,
        address=bmc.address,
        port=bmc.effective_port,
        user=bmc.user,
        password=password,
        verify_tls=bmc.verify_tls,
    )


def driver_for(
    site: Site,
    node: Node | str,
    settings: PowerSettings | None = None,
    state_dir: Path | None = None,
) -> PowerDriver:
    """The power driver of one node (by model or name), ready to use.

    ``state_dir`` is where a fake BMC keeps its state; the real drivers ignore it."""
    if isinstance(node, str):
        node = site.node(node)
    endpoint = endpoint_for(site, node)
    if node.bmc.driver == "fake":
        from provisioner.power.fake import FakePower

        return FakePower(endpoint, settings, state_dir)
    if node.bmc.driver == "redfish":
        from provisioner.power.redfish import RedfishPower

        return RedfishPower(endpoint, settings)
    from provisioner.power.ipmi import IpmiPower

    return IpmiPower(endpoint, settings)

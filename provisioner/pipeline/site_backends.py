"""The real backends of the pipeline: BMCs, the DNS server, dnsmasq's host files.

A node's power driver is built once per deployment, with the site's power
settings (``pipeline.bmc_timeout``, ``pipeline.bmc_min_interval``): the BMC
password is resolved and the driver chosen once, not before every action. A
deployment is one reservation of the node (provision, resume, hooks rerun,
decommission; the factory says how to find it): its token keys the cache, so
the next deployment (after a site edit of the BMC, say) builds a fresh driver
and the ended one's is dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from provisioner.ddns.publish import publish_node, publish_vips, unpublish_node
from provisioner.dhcp.files import put_host, remove_host
from provisioner.dhcp.hosts import DhcpPaths, host_file_name, host_line
from provisioner.inventory import Node, Site
from provisioner.pipeline.backends import BootDevice
from provisioner.power import PowerDriver, PowerSettings, driver_for
from provisioner.settings import StateDir

log = logging.getLogger(__name__)

#: node name -> the token of its current deployment (None outside one)
DeploymentOf = Callable[[str], str | None]


def power_settings(site: Site) -> PowerSettings:
    """The site's tunables of one BMC command (the rest keep the drivers' defaults)."""
    pipeline = site.pipeline
    return PowerSettings(timeout=pipeline.bmc_timeout, min_interval=pipeline.bmc_min_interval)


class SiteBackends:
    def __init__(
        self,
        state_dir: Path,
        deployment_of: DeploymentOf = lambda name: None,
        dns_retry_for: float = 30.0,
    ) -> None:
        self.dhcp = DhcpPaths(StateDir(state_dir).dhcp)
        self.state_dir = state_dir  # where a fake BMC keeps its state
        self.deployment_of = deployment_of
        self.dns_retry_for = dns_retry_for
        self._drivers: dict[str, tuple[str, PowerDriver]] = {}
        self._lock = threading.Lock()

    # -- DNS ---------------------------------------------------------------------
    def publish_dns(self, site: Site, node: Node) -> None:
        publish_node(site, node, retry_for=self.dns_retry_for)
        if site.roles[node.role].ha.vips:  # the role's VIPs and service names go with it
            publish_vips(site, retry_for=self.dns_retry_for)

    def unpublish_dns(self, site: Site, node: Node) -> list[str]:
        report = unpublish_node(site, node, retry_for=self.dns_retry_for)
        return [str(item) for item in report.left]

    # -- DHCP (dhcp/files.py writes the file and tells dnsmasq) --------------------
    def add_dhcp_host(self, site: Site, node: Node) -> None:
        """The node's dnsmasq host file (dnsmasq picks new files up by itself)."""
        if site.network.dhcp_mode == "proxy":
            return
        if put_host(self.dhcp, host_file_name(node), host_line(site, node)):
            log.info("node %s: DHCP host entry written", node.name)

    def remove_dhcp_host(self, site: Site, node: Node) -> None:
        if remove_host(self.dhcp, host_file_name(node)):
            log.info("node %s: DHCP host entry removed", node.name)

    # -- power ---------------------------------------------------------------------
    def driver(self, site: Site, node: Node) -> PowerDriver:
        """The node's driver for its current deployment (a fresh one outside any)."""
        deployment = self.deployment_of(node.name)
        with self._lock:
            cached = self._drivers.pop(node.name, None)  # an ended deployment's goes
            if cached is not None and deployment is not None and cached[0] == deployment:
                self._drivers[node.name] = cached
                return cached[1]
            driver = driver_for(site, node, power_settings(site), self.state_dir)
            if deployment is not None:
                self._drivers[node.name] = (deployment, driver)
            return driver

    def set_boot_device(self, site: Site, node: Node, device: BootDevice, persistent: bool) -> None:
        self.driver(site, node).set_boot_device(
            device, persistent=persistent, uefi=site.boot_mode_of(node) == "uefi"
        )

    def power_cycle(self, site: Site, node: Node) -> None:
        self.driver(site, node).power_cycle()

    def power_off(self, site: Site, node: Node) -> None:
        self.driver(site, node).power_off()

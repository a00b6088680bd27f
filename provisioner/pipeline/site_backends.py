"""The real backends of the pipeline: BMCs, the DNS server, dnsmasq's host files."""

from __future__ import annotations

import logging
from pathlib import Path

from provisioner.ddns.publish import publish_node, publish_vips, unpublish_node
from provisioner.dhcp.files import put_host, remove_host
from provisioner.dhcp.hosts import DhcpPaths, host_file_name, host_line
from provisioner.inventory import Node, Site
from provisioner.pipeline.backends import BootDevice
from provisioner.power import PowerDriver, PowerSettings, driver_for
from provisioner.settings import StateDir

log = logging.getLogger(__name__)


class SiteBackends:
    def __init__(
        self, state_dir: Path, power: PowerSettings | None = None, dns_retry_for: float = 30.0
    ) -> None:
        self.dhcp = DhcpPaths(StateDir(state_dir).dhcp)
        self.state_dir = state_dir  # where a fake BMC keeps its state
        self.power = power
        self.dns_retry_for = dns_retry_for
        self._drivers_site: Site | None = None
        self._drivers: dict[str, PowerDriver] = {}

    def publish_dns(self, site: Site, node: Node) -> None:
        publish_node(site, node, retry_for=self.dns_retry_for)
        if site.roles[node.role].ha.vips:  # the role's VIPs and service names go with it
            publish_vips(site, retry_for=self.dns_retry_for)

    def unpublish_dns(self, site: Site, node: Node) -> None:
        unpublish_node(site, node, retry_for=self.dns_retry_for)

    def add_dhcp_host(self, site: Site, node: Node) -> None:
        """The node's dnsmasq host file (dnsmasq picks new files up by itself)."""
        if site.network.dhcp_mode == "proxy":
            return
        if put_host(self.dhcp, host_file_name(node), host_line(site, node)):
            log.info("node %s: DHCP host entry written", node.name)

    def remove_dhcp_host(self, site: Site, node: Node) -> None:
        if remove_host(self.dhcp, host_file_name(node)):
            log.info("node %s: DHCP host entry removed", node.name)

    def _driver(self, site: Site, node: Node) -> PowerDriver:
        """One driver per node per loaded site: its BMC secret is resolved once for a
        deployment's calls, and a site edit (a new Site object) gives a fresh one."""
        if site is not self._drivers_site:
            self._drivers_site, self._drivers = site, {}
        driver = self._drivers.get(node.name)
        if driver is None:
            driver = self._drivers[node.name] = driver_for(site, node, self.power, self.state_dir)
        return driver

    def set_boot_device(self, site: Site, node: Node, device: BootDevice, persistent: bool) -> None:
        self._driver(site, node).set_boot_device(
            device, persistent=persistent, uefi=site.boot_mode_of(node) == "uefi"
        )

    def power_cycle(self, site: Site, node: Node) -> None:
        self._driver(site, node).power_cycle()

    def power_off(self, site: Site, node: Node) -> None:
        self._driver(site, node).power_off()

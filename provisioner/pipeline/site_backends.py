"""The real backends of the pipeline: BMCs, the DNS server, dnsmasq's host files."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from provisioner.ddns.publish import publish_node, publish_vips, unpublish_node
from provisioner.dhcp.hosts import DhcpPaths, host_file_name, host_line
from provisioner.inventory import Node, Site
from provisioner.pipeline.backends import BootDevice
from provisioner.power import PowerSettings, driver_for

log = logging.getLogger(__name__)


class SiteBackends:
    def __init__(
        self, state_dir: Path, power: PowerSettings | None = None, dns_retry_for: float = 30.0
    ) -> None:
        self.dhcp = DhcpPaths(state_dir / "dhcp")
        self.state_dir = state_dir  # where a fake BMC keeps its state
        self.power = power
        self.dns_retry_for = dns_retry_for

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
        hostsdir = self.dhcp.hostsdir
        hostsdir.mkdir(parents=True, exist_ok=True)
        path = hostsdir / host_file_name(node)
        wanted = host_line(site, node)
        if path.exists() and path.read_text() == wanted:
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(wanted)
        os.replace(tmp, path)
        log.info("node %s: DHCP host entry written", node.name)

    def remove_dhcp_host(self, site: Site, node: Node) -> None:
        path = self.dhcp.hostsdir / host_file_name(node)
        if not path.exists():
            return
        path.unlink()
        log.info("node %s: DHCP host entry removed", node.name)
        self._reload_dnsmasq()

    def _reload_dnsmasq(self) -> None:
        """dnsmasq forgets a removed host file only when told to re-read (SIGHUP)."""
        try:
            pid = int(self.dhcp.pidfile.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return  # no dnsmasq of ours running
        if b"dnsmasq" in cmdline and str(self.dhcp.conf).encode() in cmdline:
            os.kill(pid, signal.SIGHUP)

    def set_boot_device(self, site: Site, node: Node, device: BootDevice, persistent: bool) -> None:
        driver_for(site, node, self.power, self.state_dir).set_boot_device(
            device, persistent=persistent, uefi=site.boot_mode_of(node) == "uefi"
        )

    def power_cycle(self, site: Site, node: Node) -> None:
        driver_for(site, node, self.power, self.state_dir).power_cycle()

    def power_off(self, site: Site, node: Node) -> None:
        driver_for(site, node, self.power, self.state_dir).power_off()

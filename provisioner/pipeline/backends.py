"""What the pipeline needs from the outside world, one method per action.

The real implementation (``SiteBackends``) calls the power drivers, the DNS
updater and the DHCP host files; the pipeline itself only sequences them.
"""

from __future__ import annotations

from typing import Literal, Protocol

from provisioner.inventory import Node, Site

BootDevice = Literal["network", "disk"]


class Backends(Protocol):
    def publish_dns(self, site: Site, node: Node) -> None: ...

    def unpublish_dns(self, site: Site, node: Node) -> list[str]:
        """Remove the node's records; the records left in place because they are not
        the site's (each a line naming the node and the record), if any."""
        ...

    def add_dhcp_host(self, site: Site, node: Node) -> None: ...

    def remove_dhcp_host(self, site: Site, node: Node) -> None: ...

    def set_boot_device(
        self, site: Site, node: Node, device: BootDevice, persistent: bool
    ) -> None: ...

    def power_cycle(self, site: Site, node: Node) -> None:
        """Power on if off, hard reset if on; returns once the BMC confirms."""
        ...

    def power_off(self, site: Site, node: Node) -> None: ...

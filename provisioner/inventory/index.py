"""The site's nodes by name, MAC and IP: built once per loaded site, shared by every lookup.

Duplicates are validation errors (checks.py names both nodes), so on a site
that loaded each key has exactly one node; on a site still being validated the
first node listed wins, like dnsmasq's first host line would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from provisioner.inventory.macs import normalise_mac

if TYPE_CHECKING:
    from provisioner.inventory.models import Node


@dataclass(frozen=True)
class SiteIndex:
    nodes: Sequence[Node]  # the list it was built from: a site with other nodes rebuilds it
    by_name: Mapping[str, Node]
    by_mac: Mapping[str, Node]  # colon form only (normalise_mac)
    by_ip: Mapping[IPv4Address, Node]

    @classmethod
    def build(cls, nodes: Sequence[Node]) -> SiteIndex:
        by_name: dict[str, Node] = {}
        by_mac: dict[str, Node] = {}
        by_ip: dict[IPv4Address, Node] = {}
        for node in nodes:
            by_name.setdefault(node.name, node)
            by_ip.setdefault(node.ip, node)
            for mac in node.macs:
                by_mac.setdefault(mac, node)
        return cls(nodes, by_name, by_mac, by_ip)

    def mac(self, raw: str) -> Node | None:
        """The node owning ``raw`` in any spelling normalise_mac accepts."""
        mac = normalise_mac(raw)
        return None if mac is None else self.by_mac.get(mac)

    def ip(self, address: str | IPv4Address) -> Node | None:
        try:
            return self.by_ip.get(IPv4Address(address))
        except ValueError:
            return None

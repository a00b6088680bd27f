"""The DNS records a site wants published (pure: no I/O).

Every published forward name carries an ownership TXT record (the "marker")
naming the site and the owner, like external-dns's TXT registry: it is how a
later run tells its own records from a name another host or person owns.
CNAME aliases cannot carry a TXT record; they are recognised by their target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from provisioner.inventory.models import Node, Site

MANAGED_FORWARD_TYPES = ("A", "CNAME", "TXT")
MARKER_PREFIX = "provisioner"
_MARKER_RE = re.compile(r'^"provisioner site=(?P<site>[a-z0-9-]+) owner=(?P<owner>[a-z0-9/-]+)"$')


def absolute(name: str) -> str:
    """Lowercase, absolute (trailing dot) form used for every name in plans."""
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def in_zone(name: str, zone: str) -> bool:
    name, zone = absolute(name), absolute(zone)
    return name == zone or name.endswith("." + zone)


@dataclass(frozen=True, order=True)
class Owner:
    """Who a record belongs to: a node, or a VIP of a role."""

    kind: str  # "node" | "vip"
    name: str
    role: str = ""

    @property
    def tag(self) -> str:
        return f"node/{self.name}" if self.kind == "node" else f"vip/{self.role}/{self.name}"

    @property
    def label(self) -> str:
        return (
            f"node {self.name}" if self.kind == "node" else f"VIP {self.name} of role {self.role}"
        )

    @classmethod
    def from_tag(cls, tag: str) -> Owner:
        parts = tag.split("/")
        if parts[0] == "vip" and len(parts) == 3:
            return cls("vip", parts[2], parts[1])
        return cls("node", parts[-1])


@dataclass(frozen=True)
class Marker:
    site: str
    owner: Owner

    @property
    def text(self) -> str:
        """The TXT rdata in zone-file form (quoted)."""
        return f'"{MARKER_PREFIX} site={self.site} owner={self.owner.tag}"'

    @classmethod
    def parse(cls, text: str) -> Marker | None:
        m = _MARKER_RE.match(text)
        return cls(m["site"], Owner.from_tag(m["owner"])) if m else None

    def describe(self, our_site: str) -> str:
        suffix = "" if self.site == our_site else f" of site {self.site}"
        return self.owner.label + suffix


@dataclass(frozen=True)
class RRset:
    ttl: int
    values: frozenset[str]

    @classmethod
    def of(cls, ttl: int, *values: str) -> RRset:
        return cls(ttl, frozenset(values))

    def show(self) -> str:
        return ", ".join(sorted(self.values))


NameRecords = dict[str, RRset]  # rtype -> rrset


@dataclass
class Publication:
    """Everything one owner publishes: forward names and PTRs."""

    owner: Owner
    forward: dict[str, NameRecords] = field(default_factory=dict)
    reverse: dict[str, str] = field(default_factory=dict)  # PTR name -> target name
    addresses: dict[str, str] = field(default_factory=dict)  # address -> its forward name


def reverse_name(address: IPv4Address | str) -> str:
    return absolute(IPv4Address(str(address)).reverse_pointer)


def _host(
    site: Site, owner: Owner, fqdn: str, address: IPv4Address, aliases: list[str]
) -> Publication:
    ttl = site.dns.ttl
    fqdn = absolute(fqdn)
    marker = Marker(site.site.name, owner)
    pub = Publication(owner)
    if in_zone(fqdn, site.dns.forward_zone):
        pub.forward[fqdn] = {"A": RRset.of(ttl, str(address)), "TXT": RRset.of(ttl, marker.text)}
        pub.addresses[str(address)] = fqdn
    ptr = reverse_name(address)
    if in_zone(ptr, site.dns.reverse_zone):
        pub.reverse[ptr] = fqdn
    domain = site.site.domain.rstrip(".")
    for alias in aliases:
        pub.forward[absolute(f"{alias}.{domain}")] = {"CNAME": RRset.of(ttl, fqdn)}
    return pub


def node_publication(site: Site, node: Node) -> Publication:
    return _host(site, Owner("node", node.name), site.fqdn(node), node.ip, [])


def vip_publications(site: Site) -> list[Publication]:
    domain = site.site.domain.rstrip(".")
    pubs = []
    for role_name, role in site.roles.items():
        for vip in role.ha.vips:
            owner = Owner("vip", vip.name, role_name)
            pubs.append(_host(site, owner, f"{vip.name}.{domain}", vip.address, vip.aliases))
    return pubs


def site_publications(site: Site) -> list[Publication]:
    """Every node's and every VIP's records."""
    return [node_publication(site, n) for n in site.nodes] + vip_publications(site)

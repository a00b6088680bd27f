"""Zone files for sites without dynamic DNS (pure rendering, no I/O but the template).

The same records ``publish_site`` sends, minus the ownership TXT markers
(they only matter to dynamic updates), in the forward and reverse zones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from provisioner.ddns.records import absolute, in_zone, site_publications
from provisioner.inventory.models import Site

ZoneKind = Literal["forward", "reverse"]
TEMPLATE = "zone.db.j2"
ZONE_KINDS: tuple[ZoneKind, ...] = ("forward", "reverse")


@dataclass(frozen=True)
class ZoneRecord:
    name: str
    ttl: int
    rtype: str
    value: str


def zone_name(site: Site, kind: ZoneKind) -> str:
    return absolute(site.dns.forward_zone if kind == "forward" else site.dns.reverse_zone)


def nameserver(site: Site) -> str:
    """The zone's NS name: ns.<forward zone>, with an A record for dns.server."""
    return absolute(f"ns.{site.dns.forward_zone.rstrip('.')}")


def zone_records(site: Site, kind: ZoneKind) -> list[ZoneRecord]:
    zone = zone_name(site, kind)
    records: list[ZoneRecord] = []
    if kind == "forward" and in_zone(nameserver(site), zone):
        records.append(ZoneRecord(nameserver(site), site.dns.ttl, "A", str(site.dns.server)))
    for pub in site_publications(site):
        if kind == "forward":
            for name, rrsets in pub.forward.items():
                for rtype, rrset in sorted(rrsets.items()):
                    if rtype == "TXT":
                        continue
                    for value in sorted(rrset.values):
                        records.append(ZoneRecord(name, rrset.ttl, rtype, value))
        else:
            for ptr, target in pub.reverse.items():
                records.append(ZoneRecord(ptr, site.dns.ttl, "PTR", target))
    return sorted(records, key=lambda r: (r.name.split(".")[::-1], r.rtype, r.value))


def template_env() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True
    )


def render_zone(
    site: Site,
    kind: ZoneKind,
    serial: int,
    records: list[ZoneRecord] | None = None,
    template_text: str | None = None,
) -> str:
    """The zone file text; ``records`` defaults to the site's, [] gives an empty zone."""
    if template_text is None:
        template_text = site.content_paths().find("dns", TEMPLATE).read_text(encoding="utf-8")
    zone = zone_name(site, kind)
    return (
        template_env()
        .from_string(template_text)
        .render(
            zone=zone,
            site=site.site.name,
            ttl=site.dns.ttl,
            ns=nameserver(site),
            hostmaster=absolute(f"hostmaster.{site.dns.forward_zone.rstrip('.')}"),
            serial=serial,
            records=zone_records(site, kind) if records is None else records,
        )
    )

"""Publishing a site's records: read the zones, plan, refuse conflicts, apply.

The pipeline's entry points are ``publish_node``, ``unpublish_node`` and
``publish_site``; the CLI uses ``plan_site`` and ``apply_plan`` to show the
change set before sending it.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from provisioner.ddns.client import DnsServer
from provisioner.ddns.plan import ChangeSet, ZoneData, orphan_owners, plan
from provisioner.ddns.query import read_zone
from provisioner.ddns.records import (
    Owner,
    Publication,
    absolute,
    node_publication,
    reverse_name,
    site_publications,
    vip_publications,
)
from provisioner.ddns.update import MAX_MESSAGE_BYTES, ApplyReport, apply_changes
from provisioner.errors import DnsChanged, DnsConflict
from provisioner.inventory.models import Node, Site

log = logging.getLogger(__name__)

DEFAULT_RETRY_FOR = 30.0
MAX_REPLANS = 8  # plans sent for one publish when other writers keep changing the zone


@dataclass
class Scope:
    """What one run publishes and retires."""

    publish: list[Publication]
    retire: list[tuple[Owner, str]]
    prune: bool = False


@dataclass
class Plan:
    scope: Scope
    forward: ZoneData
    reverse: ZoneData
    changes: ChangeSet


def read_zones(
    site: Site, server: DnsServer, scope: Scope, retry_for: float
) -> tuple[ZoneData, ZoneData]:
    """Both zones (whole by AXFR, or the names ``scope`` needs)."""
    fwd_names = {n for pub in scope.publish for n in pub.forward}
    fwd_names |= {absolute(name) for _owner, name in scope.retire}
    forward = read_zone(server, site.dns.forward_zone, fwd_names, ("A", "CNAME", "TXT"), retry_for)
    rev_names = {ptr for pub in scope.publish for ptr in pub.reverse}
    for name in fwd_names:
        rev_names |= {reverse_name(a) for a in forward.values(name, "A")}
    reverse = read_zone(server, site.dns.reverse_zone, rev_names, ("PTR",), retry_for)
    return forward, reverse


def make_plan(site: Site, server: DnsServer, scope: Scope, retry_for: float) -> Plan:
    forward, reverse = read_zones(site, server, scope, retry_for)
    known = site_publications(site)
    changes = plan(site.site.name, forward, reverse, scope.publish, scope.retire, known)
    if scope.prune and changes.orphans:
        retire = scope.retire + orphan_owners(site.site.name, forward, changes.orphans)
        changes = plan(site.site.name, forward, reverse, scope.publish, retire, known)
    return Plan(scope, forward, reverse, changes)


def apply_plan(
    site: Site,
    server: DnsServer,
    planned: Plan,
    retry_for: float = DEFAULT_RETRY_FOR,
    max_bytes: int = MAX_MESSAGE_BYTES,
    max_names: int | None = None,
) -> ApplyReport:
    """Send a plan; if the zone changed since it was read, read it again, plan
    again and retry (optimistic concurrency: the update's prerequisites are what
    was read).

    Concurrent writers of the same names are normal: with fan-out, every
    controller publishes its role's VIP. The next plan then finds their work
    done (or a conflict, which is an error). Bounded by ``MAX_REPLANS``, with a
    short random pause so racing writers step apart.
    """
    for attempt in range(1, MAX_REPLANS + 1):
        if planned.changes.conflicts:
            raise DnsConflict(planned.changes.conflicts)
        try:
            report = apply_changes(server, planned.changes, retry_for, max_bytes, max_names)
            serials = {z.zone: z.serial for z in (planned.forward, planned.reverse)}
            return dataclasses.replace(
                report,
                left=tuple(planned.changes.left),
                serials=serials,
                orphans=tuple(planned.changes.orphans),
            )
        except DnsChanged:
            if attempt == MAX_REPLANS:
                raise
            log.info("dns: zone changed while updating (attempt %d), reading it again", attempt)
            time.sleep(random.uniform(0, 0.05 * attempt))
            planned = make_plan(site, server, planned.scope, retry_for)
    raise AssertionError("unreachable")


def site_scope(site: Site, names: Sequence[str] = (), prune: bool = False) -> Scope:
    """Every node and VIP, or only the named nodes."""
    if names:
        return Scope([node_publication(site, site.node(n)) for n in names], [])
    return Scope(site_publications(site), [], prune)


def _server(site: Site, server: DnsServer | None) -> DnsServer:
    return server if server is not None else DnsServer.from_site(site)


def publish_site(
    site: Site,
    server: DnsServer | None = None,
    retry_for: float = DEFAULT_RETRY_FOR,
    prune: bool = False,
) -> ApplyReport:
    """Every node's A + PTR and every VIP's A, PTR and CNAMEs, batched."""
    server = _server(site, server)
    planned = make_plan(site, server, site_scope(site, prune=prune), retry_for)
    return apply_plan(site, server, planned, retry_for)


def publish_node(
    site: Site, node: Node, server: DnsServer | None = None, retry_for: float = DEFAULT_RETRY_FOR
) -> ApplyReport:
    """One node's A and PTR (replacing its old ones if its address changed)."""
    server = _server(site, server)
    scope = Scope([node_publication(site, node)], [])
    report = apply_plan(site, server, make_plan(site, server, scope, retry_for), retry_for)
    log.info("node %s: DNS published (%d change(s))", node.name, report.changes)
    return report


def unpublish_node(
    site: Site,
    node: Node | str,
    server: DnsServer | None = None,
    retry_for: float = DEFAULT_RETRY_FOR,
) -> ApplyReport:
    """Remove a node's A, marker and its PTR; nothing to do is fine.

    A PTR naming the node at another address, or another name's PTR at the node's
    address, is not ours (see plan.wrote_ptr): left alone, logged, and listed in the
    report's ``left`` (seen when the zone can be transferred: per-name reads only find
    PTRs at the node's own address).
    """
    server = _server(site, server)
    name = node if isinstance(node, str) else node.name
    fqdn = absolute(f"{name}.{site.site.domain.rstrip('.')}")
    scope = Scope([], [(Owner("node", name), fqdn)])
    report = apply_plan(site, server, make_plan(site, server, scope, retry_for), retry_for)
    log.info("node %s: DNS records removed (%d change(s))", name, report.changes)
    for item in report.left:
        log.warning("%s", item)
    return report


def publish_vips(
    site: Site, server: DnsServer | None = None, retry_for: float = DEFAULT_RETRY_FOR
) -> ApplyReport:
    server = _server(site, server)
    scope = Scope(vip_publications(site), [])
    return apply_plan(site, server, make_plan(site, server, scope, retry_for), retry_for)

"""Cross-field checks over a structurally valid site: every problem, at once.

Pure functions from a Site (and the raw YAML, for line numbers) to Problems.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address
from typing import Any

from provisioner.errors import RoleConfigError
from provisioner.inventory.fields import tsig_secret_problem
from provisioner.inventory.models import MAIN_NETWORK, Network, Node, Site
from provisioner.inventory.problems import Problem, Severity
from provisioner.inventory.secrets import SecretRef
from provisioner.inventory.yamlload import line_of

_CRYPT_RE = re.compile(r"^\$(1|5|6|y|gy|7|2[abxy]?)\$[./0-9A-Za-z$=,]+$")
QUORUM_SERVICES_DEFAULT = ("galera", "rabbitmq", "pacemaker")


class _Report:
    """Collects problems, attaching the YAML line of the field when it can be found."""

    def __init__(self, site: Site, raw: Any, raw_index: dict[int, int]) -> None:
        self.site, self.raw = site, raw
        self.problems: list[Problem] = []
        self._raw_index = raw_index  # id(node) -> its index in the raw "nodes" list

    def node(self, node: Node, field: str, message: str, severity: Severity = "error") -> None:
        loc: tuple[str | int, ...] = ("nodes", self._raw_index.get(id(node), 10**9))
        loc += tuple(_path(field))
        self.problems.append(
            Problem(f"node {node.name}", field, message, severity, line_of(self.raw, loc))
        )

    def section(
        self,
        where: str,
        field: str,
        message: str,
        severity: Severity = "error",
        loc: tuple[str | int, ...] | None = None,
    ) -> None:
        if loc is None:
            loc = tuple(where.split(" ", 1)[0].split(".")) + tuple(_path(field))
        self.problems.append(Problem(where, field, message, severity, line_of(self.raw, loc)))


def _path(field: str) -> Iterator[str | int]:
    for part in field.split("."):
        if not part:
            continue
        m = re.fullmatch(r"(\w+)\[(\d+)\]", part)
        if m:
            yield m.group(1)
            yield int(m.group(2))
        else:
            yield part


def check_site(site: Site, raw: Any, raw_index: dict[int, int] | None = None) -> list[Problem]:
    """``raw_index`` maps id(node) to the node's position in the raw YAML list."""
    if raw_index is None:
        raw_index = {id(node): i for i, node in enumerate(site.nodes)}
    report = _Report(site, raw, raw_index)
    for check in CHECKS:
        check(site, report)
    return report.problems


def _duplicates(
    site: Site, report: _Report, key: Callable[[Node], list[tuple[str, str]]], what: str
) -> None:
    seen: dict[str, Node] = {}
    for node in site.nodes:
        for field, value in key(node):
            first = seen.get(value)
            if first is None:
                seen[value] = node
            elif first is node:
                report.node(node, field, f"{what} {value} is listed twice on this node")
            else:
                report.node(node, field, f"duplicate {what} {value} (also node {first.name})")


def check_duplicates(site: Site, report: _Report) -> None:
    _duplicates(site, report, lambda n: [("name", n.name)], "hostname")
    _duplicates(
        site, report, lambda n: [(f"macs[{i}]", mac) for i, mac in enumerate(n.macs)], "MAC"
    )
    _duplicates(site, report, lambda n: [("ip", str(n.ip))], "IP")
    _duplicates(
        site,
        report,
        lambda n: [("bmc.address", f"{n.bmc.location}")],
        "BMC address",
    )


def check_rack_positions(site: Site, report: _Report) -> None:
    """A position names a unit of a rack: it needs the rack, and one node per unit."""
    seen: dict[tuple[str, int], Node] = {}
    for node in site.nodes:
        if node.position is None:
            continue
        if node.rack is None:
            report.node(node, "position", "a rack position needs the node's rack")
            continue
        first = seen.setdefault((node.rack, node.position), node)
        if first is not node:
            report.node(
                node,
                "position",
                f"rack {node.rack} unit {node.position} already holds node {first.name}",
            )


def check_network(site: Site, report: _Report) -> None:
    networks = site.provisioning_networks()
    for name, net in networks.items():
        _check_one_network(net, "network" if name == MAIN_NETWORK else f"networks.{name}", report)
    if MAIN_NETWORK in site.networks:
        report.section("networks", MAIN_NETWORK, f"'{MAIN_NETWORK}' is the name of network:")
    names = list(networks)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            if networks[first].cidr.overlaps(networks[second].cidr):
                report.section(
                    f"networks.{second}",
                    "cidr",
                    f"{networks[second].cidr} overlaps network {first} ({networks[first].cidr})",
                )
    reserved = _reserved_addresses(site)
    for node in site.nodes:
        found = site.network_name_of(node) or (None if site.networks else MAIN_NETWORK)
        if found is None:
            report.node(node, "ip", f"{node.ip} is in no provisioning network ({', '.join(names)})")
            continue
        name, known = found, networks.get(found)
        if known is None:
            report.node(
                node,
                "boot_network",
                f"'{name}' is not a provisioning network (one of: {', '.join(names)})",
            )
            continue
        net = known
        subnet = net.cidr
        if node.ip not in subnet:
            what = "the provisioning subnet" if name == MAIN_NETWORK else f"network {name}'s subnet"
            report.node(node, "ip", f"{node.ip} is outside {what} {subnet}")
        elif node.ip in (subnet.network_address, subnet.broadcast_address):
            report.node(node, "ip", f"{node.ip} is the network or broadcast address of {subnet}")
        if net.dhcp_pool is not None and node.ip in net.dhcp_pool:
            report.node(
                node,
                "ip",
                f"{node.ip} is inside the DHCP dynamic pool "
                f"{net.dhcp_pool.start}-{net.dhcp_pool.end}",
            )
        if node.ip in reserved:
            report.node(node, "ip", f"{node.ip} is already the {reserved[node.ip]}")


def _check_one_network(net: Network, where: str, report: _Report) -> None:
    subnet = net.cidr
    if net.gateway is not None and net.gateway not in subnet:
        report.section(where, "gateway", f"{net.gateway} is outside {subnet}")
    if net.dhcp_pool is not None:
        for end in ("start", "end"):
            addr = getattr(net.dhcp_pool, end)
            if addr not in subnet:
                report.section(where, f"dhcp_pool.{end}", f"{addr} is outside {subnet}")
    prov = net.provisioner.address
    if prov not in subnet and net.relay is None:
        report.section(
            where,
            "provisioner.address",
            f"{prov} is outside {subnet} (a boot server on another subnet needs relay:)",
        )
    if net.relay is not None and net.relay not in subnet:
        report.section(where, "relay", f"{net.relay} is outside {subnet}")
    if net.dhcp_pool is not None and prov in net.dhcp_pool:
        report.section(where, "provisioner.address", f"{prov} is inside the DHCP dynamic pool")


def _reserved_addresses(site: Site) -> dict[IPv4Address, str]:
    reserved: dict[IPv4Address, str] = {}
    for name, net in site.provisioning_networks().items():
        where = "network" if name == MAIN_NETWORK else f"networks.{name}"
        reserved[net.provisioner.address] = f"provisioner's own address ({where}.provisioner)"
        if net.gateway is not None:
            reserved[net.gateway] = f"gateway ({where}.gateway)"
        if net.relay is not None:
            reserved[net.relay] = f"DHCP relay ({where}.relay)"
    return reserved


def check_references(site: Site, report: _Report) -> None:
    for node in site.nodes:
        if node.role not in site.roles:
            report.node(
                node, "role", f"unknown role '{node.role}' (known: {', '.join(sorted(site.roles))})"
            )
        profile = site.profile_of(node)
        if profile is None:
            report.node(node, "profile", "no profile set and no defaults.profile")
        elif profile not in site.profiles:
            report.node(
                node,
                "profile" if node.profile else "defaults.profile",
                f"unknown profile '{profile}' (known: {', '.join(sorted(site.profiles))})",
            )
    if site.defaults.profile is not None and site.defaults.profile not in site.profiles:
        report.section("defaults", "profile", f"unknown profile '{site.defaults.profile}'")


def check_secrets(site: Site, report: _Report) -> None:
    base = site.base_dir
    warned: set[str] = set()

    def check(ref: SecretRef, emit: Callable[[str, Severity], None], kind: str) -> None:
        why = ref.problem(base)
        if ref.generate is not None and ref.generate != kind:
            emit(f"generate: {ref.generate} does not make this secret (use {kind})", "error")
        elif why:
            emit(f"missing secret: {why}", "error")
        elif ref.loose_permissions(base) and str(ref.path(base)) not in warned:
            warned.add(str(ref.path(base)))
            emit(
                f"secret file {ref.path(base)} is readable by group or others (chmod 600)",
                "warning",
            )

    for node in site.nodes:

        def emit(message: str, severity: Severity, node: Node = node) -> None:
            report.node(node, "bmc.password", message, severity)

        check(node.bmc.password, emit, "password")
    tsig = site.dns.tsig.secret
    check(tsig, lambda m, s: report.section("dns", "tsig.secret", m, s), "tsig")
    if tsig.problem(base) is None and not tsig.to_generate(base):
        why = tsig_secret_problem(site.secret(tsig, "dns: tsig.secret").get_secret_value())
        if why:
            report.section("dns", "tsig.secret", f"{tsig.describe()} {why}")
    ref = site.defaults.root_password_hash
    check(ref, lambda m, s: report.section("defaults", "root_password_hash", m, s), "crypt-hash")
    if ref.problem(base) is None and not ref.to_generate(base):  # validate writes nothing
        value = site.secret(ref, "defaults: root_password_hash").get_secret_value()
        if not _CRYPT_RE.match(value):
            report.section(
                "defaults",
                "root_password_hash",
                f"{ref.describe()} does not hold a crypt(3) hash (like $6$salt$...); "
                "never store a plaintext password",
            )


def check_vips(site: Site, report: _Report) -> None:
    node_ips = {node.ip: node for node in site.nodes}
    reserved = _reserved_addresses(site)
    seen: dict[IPv4Address, str] = {}
    names = {node.name for node in site.nodes}
    for role_name, role in site.roles.items():
        for i, vip in enumerate(role.ha.vips):
            where = f"role {role_name}"
            field = f"ha.vips[{i}].address"
            loc: tuple[str | int, ...] = ("roles", role_name, "ha", "vips", i, "address")
            if vip.address in node_ips:
                report.section(
                    where,
                    field,
                    f"VIP {vip.name} {vip.address} collides with node "
                    f"{node_ips[vip.address].name}'s IP",
                    loc=loc,
                )
            if vip.address in reserved:
                report.section(
                    where, field, f"VIP {vip.address} is the {reserved[vip.address]}", loc=loc
                )
            if vip.address in seen:
                report.section(
                    where, field, f"VIP {vip.address} is also {seen[vip.address]}", loc=loc
                )
            seen[vip.address] = f"VIP {vip.name} of role {role_name}"
            pool = site.network.dhcp_pool
            if pool is not None and vip.address in pool:
                report.section(where, field, f"VIP {vip.address} is inside the DHCP pool", loc=loc)
            if vip.address not in site.network.cidr:
                report.section(
                    where,
                    field,
                    f"VIP {vip.address} is outside the provisioning subnet {site.network.cidr}",
                    "warning",
                    loc=loc,
                )
            for name in (vip.name, *vip.aliases):
                if name in names:
                    report.section(
                        where,
                        f"ha.vips[{i}]",
                        f"DNS name '{name}' is already a node's hostname",
                        loc=("roles", role_name, "ha", "vips", i),
                    )
                names.add(name)


def check_controllers(site: Site, report: _Report) -> None:
    controllers = site.nodes_of_kind("controller")
    roles = [name for name in site.roles if site.role_kind(name) == "controller"]
    where = f"role {roles[0]}" if roles else "roles"
    if len(controllers) < 2:
        report.section(
            where,
            "",
            f"{len(controllers)} controller node(s): an HA cloud needs at least two "
            "(three for quorum services)",
        )
    elif len(controllers) % 2 == 0:
        services = []
        for name in roles:
            services += site.roles[name].ha.quorum_services or list(QUORUM_SERVICES_DEFAULT)
        report.section(
            where,
            "ha.quorum_services",
            f"{len(controllers)} controllers: {', '.join(sorted(set(services)))} would run on an "
            "even number of members and cannot keep a majority through a split; use an odd "
            "number",
            "warning",
        )


#: The cloud guide's minimum per role kind besides the controllers (../shared/DESIGN.md) and
#: what is lost below it. Warnings, not errors: a site is often deployed role by role (the
#: controllers first), and a lab may accept one node; the bundles are right either way.
REDUNDANCY: dict[str, tuple[int, str]] = {
    "network": (
        2,
        "HA routers and DHCP need agents on two network nodes: with fewer, losing one cuts "
        "every tenant network off from routing, DHCP and metadata until it returns",
    ),
    "storage": (
        2,
        "Swift (and Ceph) keep copies on other storage nodes: with fewer, losing one loses "
        "access to every object; Cinder LVM volumes are per node anyway",
    ),
    "compute": (
        2,
        "instances are spread over compute nodes: with fewer, losing one stops every instance",
    ),
}


def check_redundancy(site: Site, report: _Report) -> None:
    for kind, (minimum, why) in REDUNDANCY.items():
        count = len(site.nodes_of_kind(kind))
        if count >= minimum:
            continue
        roles = [name for name in site.roles if site.role_kind(name) == kind]
        where = f"role {roles[0]}" if roles else "roles"
        report.section(
            where,
            "",
            f"{count} {kind} node(s), the cloud guide asks for at least {minimum}: {why}",
            "warning",
            loc=("roles", roles[0]) if roles else ("roles",),
        )


def check_vrrp_interfaces(site: Site, report: _Report) -> None:
    """A controller's keepalived needs the interface holding its address for the API VIP.

    Warned here, naming the node and the field (the controller bundle refuses to guess one
    and fails at its hook otherwise); a warning, not an error, because a site that leaves the
    HA configuration to its own hooks need not say it."""
    for node in site.nodes_of_kind("controller"):
        role = site.roles[node.role]
        if not role.ha.vips or "vrrp_interface" in role.settings:
            continue
        if node.network.interface is None and node.network.bond is None:
            report.node(
                node,
                "network.interface",
                "no interface for the API VIP's VRRP: the controller bundle cannot be made; "
                f"set network.interface (or network.bond), or role {node.role} "
                "settings.vrrp_interface",
                "warning",
            )


def _typed_settings(site: Site, kind: str) -> Iterator[tuple[str, Any]]:
    """(role name, typed settings) of each role of ``kind`` whose settings parse (the
    loader reports the ones that do not)."""
    for name in sorted(site.roles):
        if site.role_kind(name) != kind:
            continue
        try:
            yield name, site.role_settings(name)
        except RoleConfigError:
            continue


def check_role_settings(site: Site, report: _Report) -> None:
    """What a setting means for the cloud's HA, said before a deployment: state shared
    by nothing, or lost with a node."""
    for name, ctl in _typed_settings(site, "controller"):
        where, loc = f"role {name}", ("roles", name)
        if ctl.glance_store is None:
            report.section(
                where,
                "settings.glance_store",
                "not set: Glance keeps images on each controller's own disk, so an image "
                "uploaded through one controller is missing behind the others; set swift, "
                "rbd, or file with glance_shared_path",
                "warning",
                loc=loc,
            )
        elif ctl.glance_store == "file" and ctl.glance_shared_path is None:
            report.section(
                where,
                "settings.glance_shared_path",
                "required with glance_store: file (the filesystem every controller mounts)",
                loc=(*loc, "settings"),
            )
        elif ctl.glance_store == "rbd" and not any(
            sto.ceph_monitors for _n, sto in _typed_settings(site, "storage")
        ):
            report.section(
                where,
                "settings.glance_store",
                "rbd, but no storage role states ceph_monitors (the Ceph client's monitors)",
                loc=(*loc, "settings"),
            )
        elif ctl.glance_store == "swift" and not site.nodes_of_kind("storage"):
            report.section(
                where,
                "settings.glance_store",
                "swift, but the site has no storage nodes to run Swift",
                loc=(*loc, "settings"),
            )
    octavia = [name for name, ctl in _typed_settings(site, "controller") if ctl.octavia]
    managers = [n for n, net in _typed_settings(site, "network") if net.octavia_health_manager]
    if bool(octavia) != bool(managers):
        name, field, other = (
            (octavia[0], "settings.octavia", "no network role has octavia_health_manager")
            if octavia
            else (managers[0], "settings.octavia_health_manager", "no controller role has octavia")
        )
        report.section(
            f"role {name}",
            field,
            f"Octavia placed by halves: {other}; amphorae would fail over with no one "
            "hearing their heartbeats, or heartbeats would reach no API",
            "warning",
            loc=("roles", name),
        )
    for name, sto in _typed_settings(site, "storage"):
        if sto.cinder_backend == "lvm" and not sto.cinder_lvm_loss_accepted:
            report.section(
                f"role {name}",
                "settings.cinder_backend",
                "lvm: each volume lives on one storage node's disks, not replicated; while "
                "that node is down its volumes are unreachable, and they are lost with its "
                "disks (use rbd for volumes that survive a node, or set "
                "cinder_lvm_loss_accepted: true to say you know)",
                "warning",
                loc=("roles", name, "settings"),
            )


def check_dns(site: Site, report: _Report) -> None:
    domain = site.site.domain.rstrip(".")
    zone = site.dns.forward_zone.rstrip(".")
    if domain != zone and not domain.endswith("." + zone):
        report.section("dns", "forward_zone", f"site domain {domain} is not inside zone {zone}")
    reverse = site.dns.reverse_zone.rstrip(".")
    for node in site.nodes:
        ptr = node.ip.reverse_pointer
        if ptr != reverse and not ptr.endswith("." + reverse):
            report.node(node, "ip", f"{node.ip} is not inside the reverse zone {reverse}")
    if not reverse.endswith("in-addr.arpa"):
        report.section("dns", "reverse_zone", f"{reverse} is not an in-addr.arpa zone")


def check_profiles(site: Site, report: _Report) -> None:
    for name, profile in site.profiles.items():
        if profile.repo is None:  # an image profile: no installer repository
            continue
        scheme = profile.repo.split(":", 1)[0]
        if profile.os_family == "debian" and scheme not in ("http", "https", "ftp"):
            report.section(
                f"profile {name}",
                "repo",
                f"debian-installer fetches from http, https or ftp mirrors, not {scheme}:",
                loc=("profiles", name, "repo"),
            )


def check_discovery(site: Site, report: _Report) -> None:
    """The discovery section: where enrolled machines get addresses, what rules name."""
    disc, net = site.discovery, site.network
    if net.unknown_macs == "discover" and disc.environment is None:
        report.section(
            "discovery",
            "environment",
            "network.unknown_macs is 'discover' but no discovery OS is set: unknown machines "
            "are only told they are unknown (nothing is reported)",
            "warning",
            loc=("network", "unknown_macs"),
        )
    if (disc.rules or disc.addresses) and net.unknown_macs != "discover":
        report.section(
            "discovery",
            "",
            "discovery rules or addresses are set but network.unknown_macs is 'ignore': "
            "no machine will report itself",
            "warning",
        )
    if disc.addresses is not None:
        for end in ("start", "end"):
            addr = getattr(disc.addresses, end)
            if addr not in net.cidr:
                report.section("discovery", f"addresses.{end}", f"{addr} is outside {net.cidr}")
        pool = net.dhcp_pool
        if pool is not None and not (
            disc.addresses.end < pool.start or pool.end < disc.addresses.start
        ):
            report.section(
                "discovery",
                "addresses",
                f"{disc.addresses.start}-{disc.addresses.end} overlaps the DHCP dynamic pool "
                f"{pool.start}-{pool.end} (enrolled nodes get fixed addresses)",
            )
    for i, rule in enumerate(disc.rules):
        where = f"rules[{i}].enroll"
        if rule.enroll.role not in site.roles:
            report.section("discovery", f"{where}.role", f"unknown role '{rule.enroll.role}'")
        if rule.enroll.profile is not None and rule.enroll.profile not in site.profiles:
            report.section(
                "discovery", f"{where}.profile", f"unknown profile '{rule.enroll.profile}'"
            )
        if rule.enroll.ip is not None and rule.enroll.ip not in net.cidr:
            report.section("discovery", f"{where}.ip", f"{rule.enroll.ip} is outside {net.cidr}")
        if rule.enroll.ip is None and disc.addresses is None:
            report.section(
                "discovery", f"{where}.ip", "no ip and no discovery.addresses to take one from"
            )
        if rule.match == type(rule.match)():
            report.section(
                "discovery",
                f"rules[{i}].match",
                "matches every machine (no field given)",
                "warning",
            )


CHECKS: tuple[Callable[[Site, _Report], None], ...] = (
    check_profiles,
    check_duplicates,
    check_rack_positions,
    check_network,
    check_references,
    check_secrets,
    check_vips,
    check_controllers,
    check_redundancy,
    check_vrrp_interfaces,
    check_role_settings,
    check_dns,
    check_discovery,
)

"""From a discovered machine to the site.yaml entry of a node: by rule or by hand.

A rule (site.yaml ``discovery.rules``) matches what the machine reported (DMI
serial from the vendor's sheet, vendor/product, disk count and size, memory,
firmware mode) and says what node it becomes. The first matching rule wins, in
file order. The node entry is plain data in site.yaml's own shape; enrolment.py
writes it and ``validate`` checks it like any hand-written node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from provisioner.discovery.report import HardwareReport
from provisioner.errors import EnrolmentError
from provisioner.inventory import Site
from provisioner.inventory.models import DiscoveryBmc, DiscoveryMatch, DiscoveryRule


def matches(match: DiscoveryMatch, report: HardwareReport) -> bool:
    """Every field the rule gives holds for the report (DMI strings compared exactly,
    ignoring case and surrounding blanks, as vendors' sheets and firmware differ there)."""

    def same(wanted: str | None, got: str | None) -> bool:
        return wanted is None or (got or "").strip().lower() == wanted.strip().lower()

    disks = [
        d for d in report.fixed_disks if match.min_disk_gb is None or d.size_gb >= match.min_disk_gb
    ]
    return (
        same(match.serial, report.dmi.serial)
        and same(match.vendor, report.dmi.vendor)
        and same(match.product, report.dmi.product)
        and (match.min_disks is None or len(disks) >= match.min_disks)
        and (match.max_disks is None or len(report.fixed_disks) <= match.max_disks)
        and (match.min_disk_gb is None or match.min_disks is not None or bool(disks))
        and (match.min_memory_gb is None or report.memory_mb >= match.min_memory_gb * 1024)
        and (match.boot_mode is None or report.boot_mode == match.boot_mode)
    )


def first_rule(site: Site, report: HardwareReport) -> tuple[int, DiscoveryRule] | None:
    """The first rule (1-based position, rule) matching the report, if any."""
    for i, rule in enumerate(site.discovery.rules, start=1):
        if matches(rule.match, report):
            return i, rule
    return None


@dataclass(frozen=True)
class Wanted:
    """What the operator (or a rule) asks the machine to become."""

    name: str  # a name or a pattern with {serial} / {index}
    role: str
    bmc: DiscoveryBmc | None = None
    rack: str | None = None
    profile: str | None = None
    ip: IPv4Address | None = None

    @classmethod
    def of_rule(cls, rule: DiscoveryRule) -> Wanted:
        e = rule.enroll
        return cls(e.name, e.role, e.bmc, e.rack, e.profile, e.ip)


def node_name(pattern: str, site: Site, report: HardwareReport) -> str:
    """``pattern`` with {serial} (the DMI serial as a DNS label) and {index} (the lowest
    number that makes a name no node has) filled in."""
    who = f"machine {report.boot_mac}"
    if "{serial}" in pattern:
        label = re.sub(r"[^a-z0-9]+", "-", (report.dmi.serial or "").lower()).strip("-")
        if not label:
            raise EnrolmentError(f"{who}: name {pattern!r}: the machine reported no DMI serial")
        pattern = pattern.replace("{serial}", label)
    taken = {n.name for n in site.nodes}
    if "{index}" in pattern:
        index = 1
        while pattern.replace("{index}", str(index)) in taken:
            index += 1
        pattern = pattern.replace("{index}", str(index))
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", pattern):
        raise EnrolmentError(f"{who}: name {pattern!r} is not a DNS label")
    if pattern in taken:
        raise EnrolmentError(f"{who}: name: node {pattern} already exists in site.yaml")
    return pattern


def free_address(site: Site, who: str) -> IPv4Address:
    """The lowest address of ``discovery.addresses`` no node or VIP uses."""
    pool = site.discovery.addresses
    if pool is None:
        raise EnrolmentError(
            f"{who}: ip: none given and site.yaml has no discovery.addresses to take one from"
        )
    used = {n.ip for n in site.nodes} | {
        vip.address for role in site.roles.values() for vip in role.ha.vips
    }
    address = pool.start
    while address <= pool.end:
        if address not in used:
            return address
        address += 1
    raise EnrolmentError(f"{who}: ip: discovery.addresses {pool.start}-{pool.end} is used up")


def node_entry(site: Site, report: HardwareReport, wanted: Wanted) -> dict[str, Any]:
    """The site.yaml mapping of the node the machine becomes (not yet checked by validate).

    Disk hints come from the report: the count and smallest size of the fixed disks,
    and the serial (else WWN) of the disk the OS goes to (the smallest, the layouts'
    choice), so the kickstart picks that disk and no other."""
    who = f"machine {report.boot_mac}"
    if wanted.role not in site.roles:
        raise EnrolmentError(f"{who}: role: {wanted.role!r} is not a role of site.yaml")
    if wanted.bmc is None:
        raise EnrolmentError(f"{who}: bmc: no BMC settings (give them by hand or in the rule)")
    address = wanted.bmc.address or report.bmc_address
    if address is None:
        raise EnrolmentError(f"{who}: bmc.address: the machine reported no BMC and none was given")
    bmc: dict[str, Any] = {
        "driver": wanted.bmc.driver,
        "address": address,
        "user": wanted.bmc.user,
        "password": wanted.bmc.password.model_dump(exclude_none=True),
    }
    if wanted.bmc.port is not None:
        bmc["port"] = wanted.bmc.port
    entry: dict[str, Any] = {"name": node_name(wanted.name, site, report), "role": wanted.role}
    if wanted.rack:
        entry["rack"] = wanted.rack
    entry["macs"] = report.macs
    entry["ip"] = str(wanted.ip or free_address(site, who))
    entry["boot_mode"] = report.boot_mode
    if wanted.profile:
        entry["profile"] = wanted.profile
    entry["bmc"] = bmc
    fixed = report.fixed_disks
    if fixed:
        os_disk = min(fixed, key=lambda d: (d.size_bytes, d.name))
        disks: dict[str, Any] = {"count": len(fixed), "min_size_gb": max(1, os_disk.size_gb)}
        if os_disk.serial:
            disks["serial"] = os_disk.serial
        elif os_disk.wwn:
            disks["wwn"] = os_disk.wwn
        entry["disks"] = disks
    return entry

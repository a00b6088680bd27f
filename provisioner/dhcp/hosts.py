"""DHCP plan: the dnsmasq configuration and per-node host files, from the site.

Pure functions, no I/O: ``plan_dhcp`` returns the configuration serve's dnsmasq
runs with and ``plan_hosts`` the host entries a site wants; dhcp/files.py is the
one code that writes them (for serve and the pipeline alike) and tells dnsmasq.
dnsmasq hands out one fixed address per node MAC (``dhcp-hostsdir``, one file a
node), chooses the boot file by client architecture (option 93) and, once the
client is iPXE (user class "iPXE"), gives it the URL of the node's boot script.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import DhcpConfigError
from provisioner.inventory import Site
from provisioner.inventory.models import Node

#: Client architectures (DHCP option 93, RFC 4578) and the iPXE binary each gets.
BIOS_ARCH = 0
EFI_X64_ARCHES = (7, 9)  # EFI BC (what OVMF sends) and EFI x86-64
BIOS_BINARY = "undionly.kpxe"
DEFAULT_EFI_BINARY = "ipxe.efi"
#: iPXE fills in its own MAC (hyphens: safe in a URL path) when it fetches this.
BOOT_SCRIPT_PATH = "/boot/${netX/mac:hexhyp}.ipxe"
LEASE_TIME = "12h"


@dataclass(frozen=True)
class DhcpPaths:
    """Where dnsmasq's files live (all under the state dir)."""

    base: Path

    @property
    def conf(self) -> Path:
        return self.base / "dnsmasq.conf"

    @property
    def hostsdir(self) -> Path:
        return self.base / "hosts"

    @property
    def staging(self) -> Path:
        return self.base / "hosts.staging"

    @property
    def leases(self) -> Path:
        return self.base / "dnsmasq.leases"

    @property
    def pidfile(self) -> Path:
        return self.base / "dnsmasq.pid"


@dataclass(frozen=True)
class DhcpPlan:
    conf: str
    hosts: dict[str, str]  # file name in the hostsdir -> contents


def host_file_name(node: Node) -> str:
    return f"{node.name}.host"


def host_line(site: Site, node: Node) -> str:
    """One dnsmasq host line: every MAC of the node shares its fixed address."""
    return f"{','.join(node.macs)},{node.ip},{node.name},{LEASE_TIME}\n"


def plan_hosts(site: Site, exclude: frozenset[str] = frozenset()) -> dict[str, str]:
    """The wanted host files (name -> contents); ``exclude``: nodes that get none
    (decommissioned ones). Proxy mode wants none: another server gives addresses."""
    if site.network.dhcp_mode == "proxy":
        return {}
    return {
        host_file_name(node): host_line(site, node)
        for node in site.nodes
        if node.name not in exclude
    }


def _boot_url(site: Site) -> str:
    return f"{site.base_url}{BOOT_SCRIPT_PATH}"


def plan_conf(
    site: Site, paths: DhcpPaths, efi_binary: str = DEFAULT_EFI_BINARY, user: str = "root"
) -> str:
    """The dnsmasq configuration file for the site (DNS off, DHCP only)."""
    net = site.network
    prov = net.provisioner
    if prov.address not in net.cidr:
        raise DhcpConfigError(
            f"network.provisioner.address: {prov.address} is not inside network.cidr {net.cidr}"
        )
    lines = [
        "# Written by 'provisioner serve' from site.yaml: edits here are overwritten.",
        "port=0",  # no DNS
        f"user={user}",
        "no-resolv",
        "no-hosts",
        "log-dhcp",
        "log-facility=-",
        f"pid-file={paths.pidfile}",
        f"dhcp-leasefile={paths.leases}",
    ]
    if prov.interface:
        lines += [f"interface={prov.interface}", "bind-dynamic"]
    # client architecture and iPXE detection
    lines += [
        "dhcp-userclass=set:ipxe,iPXE",
        "dhcp-match=set:ipxe,175",
        f"dhcp-match=set:bios,option:client-arch,{BIOS_ARCH}",
        *(f"dhcp-match=set:efi64,option:client-arch,{arch}" for arch in EFI_X64_ARCHES),
    ]
    netmask = net.cidr.netmask
    if net.dhcp_mode == "proxy":
        lines += _proxy_lines(site, efi_binary)
    else:
        lines += [
            "dhcp-authoritative",
            f"dhcp-hostsdir={paths.hostsdir}",
            f"dhcp-range=set:nodes,{net.cidr.network_address},static,{netmask},{LEASE_TIME}",
        ]
        if net.unknown_macs == "discover":
            if net.dhcp_pool is None:
                raise DhcpConfigError(
                    "network.dhcp_pool: required when network.unknown_macs is 'discover' "
                    "(unknown machines need addresses)"
                )
            lines.append(
                f"dhcp-range=set:discovery,{net.dhcp_pool.start},{net.dhcp_pool.end},{netmask},1h"
            )
        else:
            lines.append("dhcp-ignore=tag:!known")  # unknown MACs get nothing
        if net.gateway:
            lines.append(f"dhcp-option=option:router,{net.gateway}")
        if net.dns_servers:
            servers = ",".join(str(s) for s in net.dns_servers)
            lines.append(f"dhcp-option=option:dns-server,{servers}")
        lines.append(f"dhcp-option=option:domain-name,{site.site.domain.rstrip('.')}")
        lines += [
            f"dhcp-boot=tag:!ipxe,tag:bios,{BIOS_BINARY},,{prov.address}",
            f"dhcp-boot=tag:!ipxe,tag:efi64,{efi_binary},,{prov.address}",
            f"dhcp-boot=tag:ipxe,{_boot_url(site)}",
        ]
    if prov.tftp_port != 69:
        # PXE firmware always uses port 69; say so rather than fail silently.
        lines.append(f"# note: TFTP is on port {prov.tftp_port}; PXE firmware only uses 69")
    return "\n".join(lines) + "\n"


def _proxy_lines(site: Site, efi_binary: str) -> list[str]:
    """Proxy-DHCP: another server gives addresses, dnsmasq adds the PXE answer."""
    net = site.network
    prov = net.provisioner
    return [
        f"dhcp-range={net.cidr.network_address},proxy,{net.cidr.netmask}",
        f'pxe-service=tag:!ipxe,x86PC,"iPXE (BIOS)",{BIOS_BINARY},{prov.address}',
        f'pxe-service=tag:!ipxe,BC_EFI,"iPXE (UEFI)",{efi_binary},{prov.address}',
        f'pxe-service=tag:!ipxe,x86-64_EFI,"iPXE (UEFI)",{efi_binary},{prov.address}',
        f"dhcp-boot=tag:ipxe,{_boot_url(site)}",
        "pxe-prompt=Network boot,0",
    ]


def plan_dhcp(
    site: Site,
    paths: DhcpPaths,
    efi_binary: str = DEFAULT_EFI_BINARY,
    user: str = "root",
    exclude: frozenset[str] = frozenset(),
) -> DhcpPlan:
    """``exclude``: nodes that get no host entry (decommissioned ones)."""
    return DhcpPlan(plan_conf(site, paths, efi_binary, user), plan_hosts(site, exclude))


@dataclass(frozen=True)
class HostsDiff:
    added: list[str]
    changed: list[str]
    removed: list[str]

    @property
    def needs_reload(self) -> bool:
        """dnsmasq reads new and changed files itself (inotify) but only adds what they
        say: a removed file, or the old line of a changed one, is forgotten on SIGHUP."""
        return bool(self.changed or self.removed)

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)


def diff_hosts(current: dict[str, str], wanted: dict[str, str]) -> HostsDiff:
    return HostsDiff(
        added=sorted(set(wanted) - set(current)),
        changed=sorted(k for k in wanted if k in current and current[k] != wanted[k]),
        removed=sorted(set(current) - set(wanted)),
    )

"""The lab network: a namespace with a bridge and one tap per node, or qemu user-mode.

``netns`` mode (needs root): a network namespace holding a bridge with the
provisioner's addresses (192.0.2.2, and 192.0.2.3 for BIND) and one tap per
node on the bridge. dnsmasq, BIND, ``provisioner serve`` and the qemu nodes run
inside the namespace (``exec_prefix``), so nothing of 192.0.2.0/24 touches the
host's own network.

``user`` mode (no root networking): each qemu node gets its own user-mode
network (slirp) shaped like the lab: the node's own address from slirp's DHCP,
the provisioner at the lab address mapped to the host's loopback, and the iPXE
binary fetched by TFTP from a loopback port (slirp keeps port 69 to itself).

``detect_mode`` says which one this machine can run; the mode is part of the
plan so the README and ``lab status`` can say which one ran. Planning is pure
(``plan_up``/``plan_down`` return ``ip`` command lines); ``LabNetwork`` runs them.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Literal

from provisioner import programs
from provisioner.errors import ProvisionerError

log = logging.getLogger(__name__)

NetworkMode = Literal["netns", "user"]
BRIDGE = "labbr0"
IFNAME_MAX = 15


class LabNetworkError(ProvisionerError):
    """The lab network could not be set up or torn down."""


@dataclass(frozen=True)
class LabNetworkPlan:
    """What the lab network looks like; no I/O."""

    mode: NetworkMode
    namespace: str
    cidr: IPv4Network
    addresses: tuple[IPv4Interface, ...]  # the provisioner side, on the bridge
    taps: dict[str, str] = field(default_factory=dict)  # node name -> tap device
    bridge: str = BRIDGE

    def tap(self, node: str) -> str:
        try:
            return self.taps[node]
        except KeyError:
            raise LabNetworkError(f"node {node}: not in the lab network") from None

    def exec_prefix(self) -> list[str]:
        """Prefix of a command that must run inside the lab network (empty in user mode)."""
        return ["ip", "netns", "exec", self.namespace] if self.mode == "netns" else []

    def describe(self) -> str:
        if self.mode == "netns":
            return (
                f"network namespace {self.namespace}: bridge {self.bridge} on {self.cidr} "
                f"({', '.join(str(a.ip) for a in self.addresses)}), {len(self.taps)} tap(s)"
            )
        return f"qemu user-mode networking per node, shaped as {self.cidr} (no root networking)"


def tap_names(nodes: list[str]) -> dict[str, str]:
    """One tap device name per node, short enough for Linux (15 characters)."""
    names = {}
    for i, node in enumerate(nodes):
        name = f"tap-{node}"
        names[node] = name if len(name) <= IFNAME_MAX else f"tap{i}-{node}"[:IFNAME_MAX]
    if len(set(names.values())) != len(names):
        names = {node: f"labtap{i}" for i, node in enumerate(nodes)}
    return names


def plan_network(
    nodes: list[str],
    mode: NetworkMode,
    namespace: str = "provisioner-lab",
    cidr: str = "192.0.2.0/24",
    addresses: tuple[str, ...] = ("192.0.2.2", "192.0.2.3"),
) -> LabNetworkPlan:
    net = IPv4Network(cidr)
    ifaces = []
    for addr in addresses:
        if IPv4Address(addr) not in net:
            raise LabNetworkError(f"lab network: address {addr} is outside {cidr}")
        ifaces.append(IPv4Interface(f"{addr}/{net.prefixlen}"))
    taps = tap_names(nodes) if mode == "netns" else {}
    return LabNetworkPlan(mode, namespace, net, tuple(ifaces), taps)


@dataclass(frozen=True)
class Observed:
    """What exists now inside the namespace (read by ``LabNetwork.observe``)."""

    namespace: bool = False
    links: dict[str, str | None] = field(default_factory=dict)  # name -> master
    up: frozenset[str] = frozenset()
    addresses: frozenset[str] = frozenset()  # "192.0.2.2/24" on the bridge


def plan_up(plan: LabNetworkPlan, seen: Observed) -> list[list[str]]:
    """The ``ip`` commands that bring the namespace from ``seen`` to ``plan`` (idempotent)."""
    if plan.mode != "netns":
        return []
    ns, br = plan.namespace, plan.bridge
    cmds: list[list[str]] = []
    if not seen.namespace:
        cmds.append(["ip", "netns", "add", ns])
    if "lo" not in seen.up:
        cmds.append(["ip", "-n", ns, "link", "set", "lo", "up"])
    if br not in seen.links:
        cmds.append(["ip", "-n", ns, "link", "add", br, "type", "bridge", "forward_delay", "0"])
    for addr in plan.addresses:
        if str(addr) not in seen.addresses:
            cmds.append(["ip", "-n", ns, "addr", "add", str(addr), "dev", br])
    if br not in seen.up:
        cmds.append(["ip", "-n", ns, "link", "set", br, "up"])
    for tap in plan.taps.values():
        if tap not in seen.links:
            cmds.append(["ip", "-n", ns, "tuntap", "add", "dev", tap, "mode", "tap"])
        if seen.links.get(tap) != br:
            cmds.append(["ip", "-n", ns, "link", "set", tap, "master", br])
        if tap not in seen.up:
            cmds.append(["ip", "-n", ns, "link", "set", tap, "up"])
    return cmds


def plan_down(plan: LabNetworkPlan, seen: Observed) -> list[list[str]]:
    """Deleting the namespace removes the bridge and taps with it."""
    if plan.mode != "netns" or not seen.namespace:
        return []
    return [["ip", "netns", "del", plan.namespace]]


def _ip(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(programs.command(argv), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabNetworkError(f"{' '.join(argv)}: {exc}") from exc


def namespaces() -> set[str]:
    done = _ip(["ip", "-j", "netns", "list"])
    if done.returncode != 0 or not done.stdout.strip():
        return set()
    return {entry["name"] for entry in json.loads(done.stdout)}


def detect_mode(probe_prefix: str = "provisioner-probe") -> tuple[NetworkMode, str]:
    """``netns`` when this process can create namespaces and taps, else ``user``; and why.

    It tries for real, in a throw-away namespace named ``<probe_prefix>-<random>``."""
    if os.geteuid() != 0:
        return "user", "not root: network namespaces need root"
    if not Path("/dev/net/tun").exists():
        return "user", "/dev/net/tun is missing: no tap devices"
    probe = f"{probe_prefix}-{uuid.uuid4().hex[:8]}"
    done = _ip(["ip", "netns", "add", probe])
    if done.returncode != 0:
        return "user", f"cannot create a network namespace: {done.stderr.strip()}"
    try:
        tap = _ip(["ip", "-n", probe, "tuntap", "add", "dev", "probe0", "mode", "tap"])
        if tap.returncode != 0:
            return "user", f"cannot create a tap device: {tap.stderr.strip()}"
        return "netns", "root networking available (network namespace, bridge, taps)"
    finally:
        _ip(["ip", "netns", "del", probe])


class LabNetwork:
    """Runs the plan: ``up`` and ``down`` are idempotent; ``observe`` reads the namespace."""

    def __init__(self, plan: LabNetworkPlan) -> None:
        self.plan = plan

    def observe(self) -> Observed:
        ns = self.plan.namespace
        if self.plan.mode != "netns" or ns not in namespaces():
            return Observed()
        links_out = _ip(["ip", "-n", ns, "-j", "link", "show"])
        addrs_out = _ip(["ip", "-n", ns, "-j", "-4", "addr", "show"])
        links = json.loads(links_out.stdout or "[]")
        addrs = json.loads(addrs_out.stdout or "[]")
        return Observed(
            namespace=True,
            links={link["ifname"]: link.get("master") for link in links},
            up=frozenset(link["ifname"] for link in links if "UP" in link.get("flags", [])),
            addresses=frozenset(
                f"{info['local']}/{info['prefixlen']}"
                for entry in addrs
                if entry["ifname"] == self.plan.bridge
                for info in entry.get("addr_info", [])
            ),
        )

    def _run(self, cmds: list[list[str]]) -> None:
        for argv in cmds:
            done = _ip(argv)
            if done.returncode != 0:
                raise LabNetworkError(
                    f"lab network {self.plan.namespace}: '{' '.join(argv)}' failed: "
                    f"{done.stderr.strip()}"
                )

    def up(self) -> list[list[str]]:
        cmds = plan_up(self.plan, self.observe())
        self._run(cmds)
        log.info("lab network up: %s (%d change(s))", self.plan.describe(), len(cmds))
        return cmds

    def down(self) -> list[list[str]]:
        cmds = plan_down(self.plan, self.observe())
        self._run(cmds)
        log.info("lab network %s down", self.plan.namespace)
        return cmds

    def is_up(self) -> bool:
        return self.plan.mode == "user" or not plan_up(self.plan, self.observe())


def qemu_netdev(
    plan: LabNetworkPlan,
    node: str,
    node_ip: str,
    tftp_port: int = 6969,
    bootfile: str = "undionly.kpxe",
    netdev_id: str = "n0",
) -> str:
    """The value of qemu's ``-netdev`` for ``node`` in this lab network.

    netns: the node's tap (qemu runs inside the namespace). user: a slirp network
    shaped like the lab; the provisioner's first address maps to the host's
    loopback, where TFTP listens on ``tftp_port`` (not 69, slirp keeps that one).
    """
    if plan.mode == "netns":
        return f"tap,id={netdev_id},ifname={plan.tap(node)},script=no,downscript=no"
    provisioner = plan.addresses[0].ip
    dns = plan.addresses[-1].ip
    if IPv4Address(node_ip) not in plan.cidr:
        raise LabNetworkError(f"node {node}: ip {node_ip} is outside the lab network {plan.cidr}")
    return (
        f"user,id={netdev_id},net={plan.cidr},host={provisioner},dns={dns},"
        f"dhcpstart={node_ip},hostname={node},"
        f"bootfile=tftp://{provisioner}:{tftp_port}/{bootfile}"
    )

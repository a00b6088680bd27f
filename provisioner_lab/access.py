"""`provisioner lab ssh NODE -- COMMAND`: a command on an installed lab node, as root.

The lab's site gives every node the lab's public key (``site.SSH_KEY``). In
namespace mode the node's own address is reachable only inside the lab's
namespace, so ssh runs there (``ip netns exec``); in user mode each node's slirp
forwards 127.0.0.1:<port> to its sshd (``vbmc.yaml`` names the port). Host keys
are not pinned: every reinstall makes new ones, and this is lab equipment.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from provisioner import programs
from provisioner.inventory import load_site
from provisioner_lab.orchestrate import LabError, LabPaths
from provisioner_lab.procs import LabRecord
from provisioner_lab.site import SSH_KEY

_HOSTFWD = re.compile(r"hostfwd=tcp:127\.0\.0\.1:(\d+)-:22\b")


@dataclass(frozen=True)
class SshTarget:
    node: str
    host: str
    port: int
    prefix: tuple[str, ...]  # ("ip", "netns", "exec", NS) in namespace mode


def ssh_target(paths: LabPaths, record: LabRecord, node: str) -> SshTarget:
    """Where ``node``'s sshd is reached from here; LabError for a node the lab lacks."""
    site = load_site(paths.site)
    names = [n.name for n in site.nodes]
    if node not in names:
        raise LabError(f"lab ssh: no node {node!r} in the lab (nodes: {', '.join(names)})")
    if record.mode == "netns":
        ip = str(site.node(node).ip)
        return SshTarget(node, ip, 22, ("ip", "netns", "exec", record.namespace))
    config = yaml.safe_load(paths.vbmc_config.read_text())
    for bmc in config["bmcs"]:
        if bmc["name"] == node:
            for nic in bmc["qemu"]["nics"]:
                found = _HOSTFWD.search(nic.get("user", ""))
                if found:
                    return SshTarget(node, "127.0.0.1", int(found.group(1)), ())
    raise LabError(f"lab ssh: node {node}: its qemu NIC forwards no SSH port (lab up again)")


def ssh_argv(
    paths: LabPaths, target: SshTarget, command: Sequence[str], connect_timeout: int = 10
) -> list[str]:
    """The ssh command that runs ``command`` on the target as root with the lab's key."""
    return programs.command(
        [
            *target.prefix,
            "ssh",
            "-i",
            str(paths.root / SSH_KEY),
            "-p",
            str(target.port),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            f"ConnectTimeout={connect_timeout}",
            "--",
            f"root@{target.host}",
            *command,
        ]
    )


def run_ssh(
    paths: LabPaths,
    record: LabRecord,
    node: str,
    command: Sequence[str],
    timeout: float = 120,
    connect_timeout: int = 10,
) -> subprocess.CompletedProcess[str]:
    """``command`` on ``node`` (output captured); the code path of `lab ssh`."""
    argv = ssh_argv(paths, ssh_target(paths, record, node), command, connect_timeout)
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"lab ssh: {node}: no answer within {timeout:.0f} s") from exc

"""The lab's fallback without root networking: qemu user-mode networking per node.

BIND, `serve` (no DHCP: slirp gives each node its lab address) and the BMCs run
on the host's loopback, on free ports; each node's slirp maps the provisioner's
lab address (192.0.2.2) to that loopback. The rebuild must still end with every
node ACTIVE, its DNS records published and its installed Debian booted from its
own disk (its first-boot callback reached serve through slirp), and `lab ssh`
reaches each node through the SSH port its slirp forwards from the loopback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.functional.bindlab import free_port

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]


def _lab(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`provisioner lab ARGS` on the lab in ``root``; its own log goes next to it."""
    return subprocess.run(
        [sys.executable, "-m", "provisioner", "--state-dir", str(root.parent / "state"),
         "lab", args[0], "--lab-dir", str(root), *args[1:]],
        capture_output=True, text=True, timeout=timeout, cwd=REPO,
    )  # fmt: skip


def test_user_mode_lab_rebuild(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    ports = [free_port() for _ in range(5)]
    up = _lab(
        root, "up", "--small", "--user-mode",
        "--http-port", str(ports[0]), "--dns-port", str(ports[1]),
        "--tftp-port", str(ports[2]), "--bmc-base-port", str(ports[3]),
        "--ssh-base-port", str(ports[4]),
        timeout=1200,
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "network mode: user" in up.stdout
        # two of the four (a BIOS RAID1 controller, a UEFI compute node): the netns e2e
        # test rebuilds them all; this one shows the user-mode paths in half the time
        rebuild = _lab(root, "rebuild", "ctl2", "cmp1", "--json", timeout=1800)
        rows = {r["name"]: r for r in json.loads(rebuild.stdout)}
        assert set(rows) == {"ctl2", "cmp1"}
        for name, row in rows.items():
            assert row["state"] == "active", row
            assert row["dns_name"] == f"{name}.lab.example.test"  # PTR read back from BIND
        status = json.loads(_lab(root, "status", "--json").stdout)
        assert status["mode"] == "user" and set(status["qemu"]) == set(rows)
        for node in [n for n in status["node_status"] if n["name"] in rows]:
            assert node["os"] == "Debian GNU/Linux 12 (bookworm)", node  # over SSH
            assert node["kernel"].endswith("-cloud-amd64"), node  # the booted callback
            fqdn = _lab(root, "ssh", node["name"], "--", "hostname", "-f")
            assert fqdn.stdout.strip() == f"{node['name']}.lab.example.test", fqdn.stderr
    finally:
        down = _lab(root, "down", "--purge", timeout=300)
        assert down.returncode == 0, down.stdout + down.stderr

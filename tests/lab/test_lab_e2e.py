"""The built-in virtual lab end to end: `lab up`, `lab rebuild`, then what a user checks.

Real everything: a network namespace with a bridge and taps, dnsmasq, BIND,
`provisioner serve`, virtual IPMI BMCs driving qemu nodes (TCG, OVMF or
SeaBIOS, iPXE) that run the lab installer from the kickstarts of their roles.
The small lab (3 controllers + 1 compute) keeps this to a few minutes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provisioner import programs
from provisioner.install.layouts import load_layout
from provisioner.inventory import load_site
from provisioner_lab.diskimage import DiskImage

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab's network namespace needs root"),
]

REPO = Path(__file__).resolve().parents[2]
ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BIOS_BOOT = "21686148-6449-6E6F-744E-656564454649"
RAID = "A19D880F-05FC-4D3B-A006-743F0F84911E"
LINUX_FS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
LVM = "E6D6D379-F507-44C2-A23C-238F2A3DF928"


def lab_argv(root: Path) -> list[str]:
    """`provisioner lab`, with the command's own log next to the lab (not the default state dir)."""
    return [sys.executable, "-m", "provisioner", "--state-dir", str(root.parent / "state"), "lab"]


@dataclass
class Lab:
    root: Path
    namespace: str
    results: dict[str, dict[str, Any]]

    def lab(self, sub: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """`provisioner lab SUB --lab-dir ROOT ARGS`."""
        return subprocess.run(
            [*lab_argv(self.root), sub, "--lab-dir", str(self.root), *args],
            capture_output=True, text=True, timeout=timeout, cwd=REPO,
        )  # fmt: skip

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """`provisioner ARGS` against the lab (inside its namespace)."""
        return self.lab("run", *args, timeout=timeout)

    def status(self) -> dict[str, Any]:
        done = self.lab("status", "--json")
        assert done.returncode == 0, done.stderr
        data: dict[str, Any] = json.loads(done.stdout)
        return data

    def dig(self, *query: str) -> str:
        return subprocess.run(
            programs.command(
                ["ip", "netns", "exec", self.namespace, "dig", "@192.0.2.3", "+short", *query]
            ),
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip()  # fmt: skip

    def events(self, node: str) -> list[dict[str, Any]]:
        done = self.run("events", node, "--json")
        assert done.returncode == 0, done.stderr
        events: list[dict[str, Any]] = json.loads(done.stdout)
        return events

    def serial(self, node: str) -> str:
        return (self.root / "serial" / f"{node}.log").read_text(errors="replace")

    def wait_serial(self, node: str, text: str, count: int = 1, timeout: float = 300) -> str:
        """The node's console once ``text`` appeared ``count`` times: a node is ACTIVE as
        soon as it called back, while its reboot to local disk may still be under way."""
        deadline = time.monotonic() + timeout
        while (console := self.serial(node)).count(text) < count:
            assert time.monotonic() < deadline, f"{node}: no '{text}' on its console"
            time.sleep(1)
        return console


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lab") / "lab"
    namespace = f"pv9b-{uuid.uuid4().hex[:8]}"
    base = lab_argv(root)
    try:
        up = subprocess.run(
            [*base, "up", "--small", "--namespace", namespace, "--lab-dir", str(root)],
            capture_output=True, text=True, timeout=600, cwd=REPO,
        )  # fmt: skip
        assert up.returncode == 0, up.stdout + up.stderr
        assert "network mode: netns" in up.stdout
        rebuild = subprocess.run(
            [*base, "rebuild", "--json", "--lab-dir", str(root)],
            capture_output=True, text=True, timeout=900, cwd=REPO,
        )  # fmt: skip
        rows = json.loads(rebuild.stdout) if rebuild.stdout.strip() else []
        yield Lab(root, namespace, {r["name"]: r for r in rows})
    finally:
        down = subprocess.run(
            [*base, "down", "--lab-dir", str(root)],
            capture_output=True, text=True, timeout=300, cwd=REPO,
        )  # fmt: skip
        assert down.returncode == 0, down.stdout + down.stderr
        gone = subprocess.run(
            [programs.path("ip"), "netns", "list"], capture_output=True, text=True
        )
        assert namespace not in gone.stdout


def test_rebuild_brings_every_node_active_with_its_dns_name(lab: Lab) -> None:
    assert set(lab.results) == {"ctl1", "ctl2", "ctl3", "cmp1"}
    for name, row in lab.results.items():
        assert row["state"] == "active", row
        assert row["dns_name"] == f"{name}.lab.example.test"
        assert row["seconds"] > 5  # a real install under TCG, not a shortcut
    assert {r["boot_mode"] for r in lab.results.values()} == {"bios", "uefi"}


def test_the_firmware_pxe_node_fetched_ipxe_over_tftp_and_the_rom_nodes_did_not(lab: Lab) -> None:
    firmware = [n for n, r in lab.results.items() if r["network_boot"] == "PXE+TFTP"]
    assert firmware == ["cmp1"] and lab.results["cmp1"]["boot_mode"] == "uefi"
    serve_log = (lab.root / "logs" / "serve.log").read_text()
    assert f"tftp: node cmp1 ({lab.results['cmp1']['ip']}): sending ipxe.efi" in serve_log
    for name, row in lab.results.items():
        if name != "cmp1":
            assert row["network_boot"] == "iPXE ROM"
            assert f"tftp: node {name} " not in serve_log  # qemu's ROM is iPXE already


def test_each_disk_has_the_partition_table_of_its_roles_layout(lab: Lab) -> None:
    site = load_site(lab.root / "site.yaml")
    for node in site.nodes:
        layout = load_layout(site.content_paths(), site.roles[node.role].layout, node.name)
        uefi = site.boot_mode_of(node) == "uefi"
        disks = sorted((lab.root / "disks").glob(f"{node.name}-vd*.raw"))
        raid = layout.os_disks.raid == "raid1" and len(disks) >= 2
        os_disks = disks[:2] if raid else disks[:1]
        for disk in os_disks:
            parts = DiskImage(disk).partitions()
            sizes = [int(p["size"]) * 512 // 2**20 for p in parts]
            types = [p["type"] for p in parts]
            first_type = BIOS_BOOT if not uefi else RAID if raid else ESP
            first_size = layout.efi_size if uefi else layout.biosboot_size
            assert (types[0], sizes[0]) == (first_type, first_size), (disk, parts)
            assert layout.boot is not None
            assert types[1] == (RAID if raid else LINUX_FS) and sizes[1] == layout.boot.size
            assert types[2] == (RAID if raid else LVM) and len(parts) == 3, parts
            assert sizes[2] > 28 * 1024  # the volume group took the rest of the 32 GB disk
        image = DiskImage(os_disks[0])
        if raid:
            assert image.md_superblock(3).level == 1 and image.md_superblock(3).raid_disks == 2
        meta = image.lvm_metadata(3)
        volumes = meta[layout.volume_group]["logical_volumes"]
        assert set(volumes) == {v.name for v in layout.volumes}, node.name


def test_lab_bind_resolves_every_node_forward_and_reverse(lab: Lab) -> None:
    site = load_site(lab.root / "site.yaml")
    for node in site.nodes:
        assert lab.dig(f"{node.name}.lab.example.test", "A") == str(node.ip)
        assert lab.dig("-x", str(node.ip)) == f"{node.name}.lab.example.test."
    assert lab.dig("api.lab.example.test", "A") == "192.0.2.10"


def test_hooks_ran_and_wrote_each_nodes_role_bundle(lab: Lab) -> None:
    site = load_site(lab.root / "site.yaml")
    for node in site.nodes:
        messages = [e["message"] for e in lab.events(node.name) if e["kind"] == "hook"]
        assert any(m.startswith("hook common/10-record-context exited 0") for m in messages)
        assert any(m.startswith(f"hook {node.role}/50-ha-bundle done in-process") for m in messages)
        bundle = lab.root / "bundles" / node.name
        listed = (bundle / "MANIFEST").read_text().split()
        assert listed and all((bundle / f).is_file() for f in listed)
    assert (lab.root / "bundles" / "ctl1" / "haproxy" / "haproxy.cfg").exists()
    decisions = {
        n: json.loads((lab.root / "bundles" / n / "galera" / "decision.json").read_text())
        for n in ("ctl1", "ctl2", "ctl3")
    }
    # first deployment: exactly one controller bootstraps the clusters, the others join
    assert sorted(d["bootstrap"] for d in decisions.values()) == [False, False, True]


def test_second_boot_of_every_node_went_to_local_disk(lab: Lab) -> None:
    for name in lab.results:
        console = lab.wait_serial(name, f"provisioner lab: {name} booted from local disk")
        assert console.count("LAB INSTALLER") == 1, name
        installed = console.index(f"installation of {name} complete")
        assert f"provisioner lab: {name} booted from local disk" in console[installed:]
        assert lab.status()["qemu"].get(name), f"{name}: qemu not running after the install"


def test_reprovision_a_killed_controller_rejoins_and_leaves_the_others_alone(lab: Lab) -> None:
    before = lab.status()["qemu"]
    others = {n: p for n, p in before.items() if n != "ctl1"}
    served = {n: _count(lab.events(n), "kickstart served") for n in others}
    os.kill(before["ctl1"], signal.SIGKILL)  # the failed node

    again = lab.run("reprovision", "ctl1", "--yes", "--json", timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)[0]["state"] == "active"

    decision = json.loads((lab.root / "bundles/ctl1/galera/decision.json").read_text())
    assert decision["bootstrap"] is False, decision  # rejoins the running cluster
    local = "provisioner lab: ctl1 booted from local disk"
    console = lab.wait_serial("ctl1", local, count=2)
    assert console.count("LAB INSTALLER") == 2
    assert console.rindex(local) > console.rindex("installation of ctl1 complete")
    after = lab.status()["qemu"]
    assert {n: after.get(n) for n in others} == others  # the same qemu processes
    nodes = {n["name"]: n for n in json.loads(lab.run("nodes", "--json").stdout)}
    for name in others:
        assert nodes[name]["state"] == "active"
        assert _count(lab.events(name), "kickstart served") == served[name]


def test_no_secret_reaches_a_log_or_the_status_output(lab: Lab) -> None:
    secrets = {
        f.name: f.read_text().strip()
        for f in [*(lab.root / "secrets").iterdir(), lab.root / "api.token"]
    }
    assert all(len(v) >= 8 for v in secrets.values()), secrets.keys()
    logs = [*(lab.root / "logs").iterdir(), lab.root / "provisioner.log"]
    logs += list((lab.root.parent / "state").glob("*.log"))  # the `lab` commands' own log
    shown = lab.lab("status").stdout + lab.run("nodes").stdout + lab.run("events", "ctl2").stdout
    for name, value in secrets.items():
        for log in logs:
            assert value not in log.read_text(errors="replace"), f"{name} in {log.name}"
        assert value not in shown, f"{name} printed by status, nodes or events"
    for log in logs:  # the one-time deploy tokens travel in kickstart URLs
        assert "token=" not in log.read_text(errors="replace"), log.name


def _count(events: list[dict[str, Any]], message: str) -> int:
    return sum(1 for e in events if e["message"] == message)

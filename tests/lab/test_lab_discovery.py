"""Racking new hardware in the lab: two unknown machines discover themselves, one is
enrolled by a DMI-serial rule as a compute node, one by hand as a storage node, and
both are provisioned to ACTIVE.

Real everything, as in test_lab_e2e.py: the namespace lab with dnsmasq (the dynamic
pool for unknown machines), BIND, `provisioner serve`, virtual IPMI BMCs and qemu
machines with DMI and disk serial numbers, booting the lab installer in discovery
mode. The lab's own nodes stay off (nothing here needs them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.inventory import load_site

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab's network namespace needs root"),
]

REPO = Path(__file__).resolve().parents[2]
SERIALS = ("VENDOR-SHEET-0042", "VENDOR-SHEET-0043")


class Lab:
    def __init__(self, root: Path) -> None:
        self.root = root

    def lab(self, sub: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "provisioner", "--state-dir", str(self.root.parent / "state"),
             "lab", sub, "--lab-dir", str(self.root), *args],
            capture_output=True, text=True, timeout=timeout, cwd=REPO,
        )  # fmt: skip

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return self.lab("run", *args, timeout=timeout)

    def discovered(self) -> list[dict[str, Any]]:
        done = self.run("discovered", "--json", "--all")
        assert done.returncode == 0, done.stderr
        found: list[dict[str, Any]] = json.loads(done.stdout)
        return found


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("disco") / "lab")
    try:
        up = lab.lab("up", "--small", "--namespace", f"pv19-{uuid.uuid4().hex[:8]}")
        assert up.returncode == 0, up.stdout + up.stderr
        yield lab
    finally:
        down = lab.lab("down", "--purge", timeout=300)
        assert down.returncode == 0, down.stdout + down.stderr


def test_unknown_machines_discover_enrol_and_provision(lab: Lab) -> None:
    racked = lab.lab("add-unknown", "2", "--disks", "2", "--serial", SERIALS[0],
                     "--serial", SERIALS[1], "--json")  # fmt: skip
    assert racked.returncode == 0, racked.stdout + racked.stderr
    machines = {m["serial"]: m for m in json.loads(racked.stdout)}
    compute, storage = machines[SERIALS[0]], machines[SERIALS[1]]

    # both boot the discovery OS and report themselves
    deadline = time.monotonic() + 420
    while {m["mac"] for m in lab.discovered()} != {compute["mac"], storage["mac"]}:
        assert time.monotonic() < deadline, "the new machines did not report themselves"
        time.sleep(5)
    reports = {m["mac"]: m["report"] for m in lab.discovered()}
    assert reports[compute["mac"]]["dmi"]["serial"] == SERIALS[0]
    disks = reports[storage["mac"]]["disks"]
    assert sorted(d["serial"] for d in disks) == sorted(storage["disk_serials"])

    # the operator adds a rule for the compute node's serial
    site = lab.root / "site.yaml"
    header = site.read_text().splitlines()[0]
    assert header.startswith("#")  # the lab's own comment at the top
    port = int(compute["bmc"].rsplit(":", 1)[1])
    text = site.read_text().replace(
        "discovery:\n",
        "discovery:\n"
        "  # rack r2 from the vendor's sheet (PO 4711)\n"
        "  rules:\n"
        f"    - match: {{serial: {SERIALS[0]}}}\n"
        '      enroll: {name: "cmp-{index}", role: compute, rack: r2,\n'
        f"               bmc: {{address: 127.0.0.1, port: {port}, user: admin,\n"
        "                     password: {file: secrets/bmc-password}}}\n",
        1,
    )
    site.write_text(text)
    by_rule = lab.run("enroll", "--rules")
    assert by_rule.returncode == 0, by_rule.stdout + by_rule.stderr
    assert f"{compute['mac']}: enrolled as cmp-1 (compute, 192.0.2.60)" in by_rule.stdout
    assert f"{storage['mac']}: no rule matches" in by_rule.stdout

    port = int(storage["bmc"].rsplit(":", 1)[1])
    by_hand = lab.run(
        "enroll", "--mac", storage["mac"], "--name", "sto-{index}", "--role", "storage",
        "--rack", "r1", "--bmc-address", "127.0.0.1", "--bmc-port", str(port),
        "--bmc-user", "admin", "--bmc-password-file", "secrets/bmc-password",
    )  # fmt: skip
    assert by_hand.returncode == 0, by_hand.stdout + by_hand.stderr
    after = site.read_text()
    assert after.splitlines()[0] == header and "# rack r2 from the vendor's sheet" in after
    nodes = {n.name: n for n in load_site(site).nodes}
    assert nodes["sto-1"].disks.serial == storage["disk_serials"][0]
    assert nodes["cmp-1"].disks.serial == compute["disk_serials"][0]

    # the kickstart pins the OS disk by the serial the machine reported
    kickstart = lab.run("render", "kickstart", "sto-1")
    assert kickstart.returncode == 0, kickstart.stderr
    assert storage["disk_serials"][0] in kickstart.stdout

    # and both provision like any node: their next network boot is the install
    done = lab.run("provision", "cmp-1", "sto-1", "--json", timeout=1200)
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert {n: r["state"] for n, r in rows.items()} == {"cmp-1": "active", "sto-1": "active"}, (
        done.stdout + done.stderr
    )
    console = (lab.root / "serial" / f"{compute['name']}.log").read_text(errors="replace")
    assert "discovery mode: reporting this machine's hardware" in console
    assert console.index("discovery mode") < console.index("installation of cmp-1 complete")

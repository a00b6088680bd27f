"""`provisioner discovered` and `provisioner enroll --rules / --mac`: from report to node.

What an operator checks: the list, site.yaml afterwards (its comments kept, the new
node's entry, validate passing), the node enrolled in the store, and that a
request that cannot be met leaves site.yaml exactly as it was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.discovery.report import parse_report
from provisioner.inventory import load_site
from provisioner.state.discovered import Discoveries
from provisioner.state.store import Store
from tests.unit.discovery.disco import NEW_MAC, make_discovering, report

OTHER_MAC = "52:54:00:bb:00:01"
COMMENT = "# rack r2 came from the vendor sheet of 2026-11 (PO 4711)\n"


@pytest.fixture
def lab(site_dir: Path, tmp_path: Path) -> Path:
    """A discovering site with an operator's comment, and two machines that reported."""
    path = make_discovering(site_dir)
    text = path.read_text().replace("nodes:\n", f"{COMMENT}nodes:\n", 1)
    path.write_text(text + "# end of the inventory: new nodes go above this line\n")
    store = Store.open(tmp_path / "state")
    found = Discoveries(store)
    found.record(NEW_MAC, report(), "192.0.2.201")
    other = report(
        boot_mac=OTHER_MAC,
        nics=[{"mac": OTHER_MAC, "name": "enp1s0"}],
        dmi={"vendor": "QEMU", "serial": "SN 7/B"},
        disks=[{"name": "sda", "size_bytes": 100 * 10**9, "wwn": "0x5000c500a1b2c3d4"}],
        bmc_address=None,
    )
    parse_report(other)  # a valid report
    found.record(OTHER_MAC, other, "192.0.2.202")
    store.close()
    return path


def run(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it (exit codes and messages from its error handling)."""
    state = path.parent / "state"  # the fixture's site_dir is the test's tmp_path
    return subprocess.run(
        [sys.executable, "-m", "provisioner", "--site", str(path), "--state-dir", str(state),
         *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_discovered_lists_both_machines_and_the_rule_each_matches(lab: Path) -> None:
    listed = json.loads(run(lab, "discovered", "--json").stdout)
    assert [(m["mac"], m["rule"], m["enrolled_as"]) for m in listed] == [
        (NEW_MAC, 1, None),
        (OTHER_MAC, None, None),
    ]
    text = run(lab, "discovered").stdout
    assert "LAB-SN-0042" in text and "2 disk(s) (40 GB, 500 GB)" in text and "no rule" in text


def test_enroll_by_rule_writes_the_node_keeps_comments_and_enrols_it(lab: Path) -> None:
    before = lab.read_text()
    result = run(lab, "enroll", "--rules")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{NEW_MAC}: enrolled as cmp-1 (compute, 192.0.2.60)" in result.stdout
    assert f"{OTHER_MAC}: no rule matches; left in discovery" in result.stdout
    after = lab.read_text()
    assert COMMENT in after and after.endswith("new nodes go above this line\n")
    assert after.startswith(before[: before.index("nodes:\n")])  # everything above untouched
    node = load_site(lab).node("cmp-1")
    assert (node.role, node.rack, str(node.ip), node.boot_mode) == (
        "compute",
        "r2",
        "192.0.2.60",
        "uefi",
    )
    assert node.macs == [NEW_MAC, "52:54:00:aa:00:02"]
    assert (node.bmc.address, node.bmc.port) == ("127.0.0.1", 6300)  # reported + rule
    # the OS goes on the disk the layout means: pinned by the serial the machine reported
    assert (node.disks.serial, node.disks.count, node.disks.min_size_gb) == ("OS-DISK-1", 2, 40)
    status = json.loads(run(lab, "status", "cmp-1", "--json").stdout)
    assert status["state"]["state"] == "enrolled"
    listed = json.loads(run(lab, "discovered", "--json", "--all").stdout)
    assert [m["enrolled_as"] for m in listed] == ["cmp-1", None]
    # a second run finds nothing left for the rule to do
    again = run(lab, "enroll", "--rules")
    assert again.returncode == 0 and "enrolled as" not in again.stdout


def test_enroll_by_hand_with_a_serial_name_and_a_wwn_hint(lab: Path) -> None:
    result = run(
        lab, "enroll", "--mac", OTHER_MAC, "--name", "stor-{serial}", "--role", "storage",
        "--bmc-address", "127.0.0.1", "--bmc-port", "6301", "--bmc-user", "admin",
        "--bmc-password-file", "secrets/bmc-password", "--ip", "192.0.2.66",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    node = load_site(lab).node("stor-sn-7-b")
    assert (node.role, str(node.ip), node.disks.wwn) == (
        "storage",
        "192.0.2.66",
        "0x5000c500a1b2c3d4",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "nosuch"], f"machine {OTHER_MAC}: role: 'nosuch' is not a role"),
        (["--role", "storage"], f"machine {OTHER_MAC}: bmc.address: the machine reported no BMC"),
        (["--role", "storage", "--bmc-address", "127.0.0.1", "--ip", "192.0.2.11"],
         "ip"),  # ctl1's address: validate refuses the result
        (["--role", "storage", "--bmc-address", "127.0.0.1", "--name", "ctl1"],
         "node ctl1 already exists"),
    ],
)  # fmt: skip
def test_an_enrolment_that_cannot_be_met_leaves_site_yaml_as_it_was(
    lab: Path, args: list[str], message: str
) -> None:
    before = lab.read_bytes()
    base = ["--name", "stor1", "--bmc-user", "admin", "--bmc-password-file", "secrets/bmc-password"]
    result = run(lab, "enroll", "--mac", OTHER_MAC, *base, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert lab.read_bytes() == before
    assert not list(lab.parent.glob(".site-*"))  # no temporary file left behind


def test_dry_run_and_unknown_machines(lab: Path) -> None:
    before = lab.read_bytes()
    dry = run(lab, "enroll", "--rules", "--dry-run")
    assert f"{NEW_MAC}: would enrol as cmp-1" in dry.stdout and lab.read_bytes() == before
    missing = run(lab, "enroll", "--mac", "52:54:00:ff:ff:ff", "--name", "x", "--role", "compute")
    assert missing.returncode == 3 and "not discovered" in missing.stderr


def test_validate_checks_the_discovery_section(site_dir: Path) -> None:
    from provisioner.inventory.loader import validate_site_file

    bad = {
        "addresses": {"start": "192.0.2.240", "end": "192.0.2.245"},  # inside the DHCP pool
        "rules": [
            {
                "match": {},
                "enroll": {"name": "x-{index}", "role": "nosuch", "ip": "198.51.100.7",
                           "bmc": {"user": "admin", "password": {"env": "BMC_PASSWORD"}}},
            }
        ],
    }  # fmt: skip
    _, problems = validate_site_file(make_discovering(site_dir, bad))
    shown = {(p.field, p.severity) for p in problems if p.where == "discovery"}
    assert shown == {
        ("environment", "warning"),  # no discovery OS: machines are only told they are unknown
        ("addresses", "error"),
        ("rules[0].enroll.role", "error"),
        ("rules[0].enroll.ip", "error"),
        ("rules[0].match", "warning"),
    }

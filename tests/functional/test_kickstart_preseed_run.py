"""The preseed's partman/early_command run as debian-installer would: busybox applets
only, a sysfs tree for the disks, callbacks to a real HTTP server on loopback.

`debconf-set` is debian-installer's own tool and does not exist here: a two-line
script records what it would have set.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from provisioner import programs
from provisioner.install.preseed import render_preseed
from provisioner.inventory import Site, load_site
from tests.functional.installer_env import GB, callback_server, make_sysfs
from tests.unit.install.kshelpers import parse_preseed

APPLETS = ("sh", "awk", "sort", "grep", "head", "tr", "cat", "readlink", "wget", "echo", "mkdir")


@pytest.fixture
def site(site_dir: Path) -> Site:
    return load_site(site_dir / "site.yaml")


def installer_path(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for applet in APPLETS:
        (bin_dir / applet).symlink_to(programs.path("busybox"))
    shim = bin_dir / "debconf-set"
    shim.write_text(f'#!/bin/busybox sh\necho "$1=$2" >> {tmp_path}/debconf\n')
    shim.chmod(0o755)
    return bin_dir


def run_early(
    site: Site, name: str, disks: dict[str, tuple[int, int]], tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], list[str], list]:
    with callback_server() as recorder:
        text = render_preseed(
            site, site.node(name), token=f"tok-{name}", base_url=recorder.base_url
        )
        command = parse_preseed(text)["partman/early_command"][1]
        command = command.replace("/tmp/", f"{tmp_path}/")
        env = {
            "PATH": str(installer_path(tmp_path)),
            "PROVISIONER_SYSFS": str(make_sysfs(tmp_path / "sys", disks)),
        }
        result = subprocess.run(
            [programs.path("busybox"), "sh", "-c", command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    debconf = tmp_path / "debconf"
    return result, debconf.read_text().splitlines() if debconf.exists() else [], recorder.calls


def test_controller_raid_recipe_names_the_chosen_disks(site: Site, tmp_path: Path) -> None:
    disks = {"sda": (30 * GB, 0), "sdb": (8 * GB, 0), "nvme0n1": (30 * GB, 0), "sr0": (GB, 1)}
    result, debconf, calls = run_early(site, "ctl1", disks, tmp_path)
    assert result.returncode == 0, result.stderr
    assert debconf == [
        "partman-auto/disk=/dev/nvme0n1 /dev/sda",
        "partman-auto-raid/recipe=1 2 0 xfs /boot /dev/nvme0n1p2#/dev/sda2 . "
        "1 2 0 lvm - /dev/nvme0n1p3#/dev/sda3 .",
    ]
    assert [(c.path, c.authorization, c.body) for c in calls] == [
        (
            "/api/v1/nodes/ctl1/callback?token=tok-ctl1",
            "Bearer tok-ctl1",
            {"status": "started", "message": "installer fetched its preseed"},
        )
    ]
    disks_file = (tmp_path / "provisioner-disks").read_text()
    assert disks_file == "OS_DISKS='nvme0n1 sda'\nDATA_DISKS=''\n"


def test_storage_node_smallest_disk_for_the_os(site: Site, tmp_path: Path) -> None:
    disks = {"sda": (200 * GB, 0), "sdb": (200 * GB, 0), "sdc": (40 * GB, 0), "sdd": (200 * GB, 0)}
    result, debconf, _ = run_early(site, "sto2", disks, tmp_path)
    assert result.returncode == 0, result.stderr
    assert debconf == ["partman-auto/disk=/dev/sdc"]
    disks_file = (tmp_path / "provisioner-disks").read_text()
    # the storage role's disk plan (cinder_backend: lvm, default plan): one data disk for
    # the cinder-volumes group; the others stay untouched for Swift (prepare-disks.sh)
    assert disks_file == "OS_DISKS='sdc'\nDATA_DISKS='sda'\n"


def test_no_usable_disk_reports_failure(site: Site, tmp_path: Path) -> None:
    result, debconf, calls = run_early(site, "cmp1", {"sda": (GB * 500, 1)}, tmp_path)
    assert result.returncode != 0 and debconf == []
    assert calls[-1].body["status"] == "failed"
    assert calls[-1].body["message"].startswith("found 0 disk(s) of at least")

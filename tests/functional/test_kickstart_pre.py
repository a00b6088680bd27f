"""The kickstart's %pre run by bash against a sysfs tree: which disks it picks, the
storage include it writes, and the callbacks it POSTs to a real server on loopback.

The sysfs tree stands in for the machine's disks (hardware this host does not have);
everything else (bash, awk, sort, curl, the HTTP server) is real.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from provisioner import programs
from provisioner.install.kickstart import STORAGE_INCLUDE, render_kickstart
from provisioner.inventory import Site, load_site
from provisioner.inventory.models import DiskHints
from tests.functional.installer_env import GB, callback_server, make_sysfs
from tests.unit.install.kshelpers import scripts


@pytest.fixture
def site(site_dir: Path) -> Site:
    return load_site(site_dir / "site.yaml")


def run_pre(
    site: Site,
    node_name: str,
    disks: dict[str, tuple[int, int]],
    tmp_path: Path,
    serials: dict[str, str] | None = None,
    **hints: object,
) -> tuple[subprocess.CompletedProcess[str], str | None, list]:
    node = site.node(node_name)
    if hints:
        node = node.model_copy(update={"disks": DiskHints(**hints)})  # type: ignore[arg-type]
    include = tmp_path / "storage.ks"
    with callback_server() as recorder:
        text = render_kickstart(site, node, token=f"tok-{node_name}", base_url=recorder.base_url)
        pre = scripts(text)["pre"][0].replace(STORAGE_INCLUDE, str(include))
        script = tmp_path / "pre.sh"
        script.write_text(pre)
        sysfs = make_sysfs(tmp_path / "sys", disks)
        for name, serial in (serials or {}).items():  # as virtio-blk shows it
            (sysfs / "block" / name / "serial").write_text(serial + "\n")
        result = subprocess.run(
            [programs.path("bash"), str(script)],
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PROVISIONER_SYSFS": str(sysfs)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    written = include.read_text() if include.exists() else None
    return result, written, recorder.calls


def test_controller_mirrors_the_first_two_usable_disks(site: Site, tmp_path: Path) -> None:
    disks = {
        "sda": (30 * GB, 0),
        "sdb": (40 * GB, 1),  # removable: a USB stick
        "sdc": (25 * GB, 0),
        "sdd": (10 * GB, 0),  # below disks.min_size_gb
        "sr0": (1 * GB, 1),
        "loop0": (50 * GB, 0),
    }
    result, storage, calls = run_pre(site, "ctl1", disks, tmp_path)
    assert result.returncode == 0, result.stderr
    assert storage is not None
    assert "ignoredisk --only-use=sda,sdc\n" in storage
    assert "part raid.pv1 --size=14384 --grow --ondisk=sdc\n" in storage
    assert [(c.path, c.body["status"]) for c in calls] == [
        ("/api/v1/nodes/ctl1/callback", "started")
    ]
    assert calls[0].authorization == "Bearer tok-ctl1"
    assert calls[0].content_type == "application/json"
    assert calls[0].body["message"] == "installer fetched its kickstart"


def test_storage_node_takes_the_smallest_disk_and_gives_the_rest_to_cinder(
    site: Site, tmp_path: Path
) -> None:
    disks = {name: (100 * GB, 0) for name in ("sda", "sdc", "sdd", "sde")}
    disks["sdb"] = (21 * GB, 0)
    result, storage, _ = run_pre(site, "sto1", disks, tmp_path)
    assert result.returncode == 0, result.stderr
    assert storage is not None
    assert "ignoredisk --only-use=sdb,sda,sdc,sdd\n" in storage
    assert "part pv.os --size=11296 --grow --ondisk=sdb\n" in storage
    assert "volgroup cinder-volumes pv.data1 pv.data2 pv.data3\n" in storage
    assert "sde" not in storage  # a fifth disk the inventory did not count stays untouched


def test_too_few_disks_fails_the_install_and_says_why(site: Site, tmp_path: Path) -> None:
    result, storage, calls = run_pre(site, "ctl2", {"vda": (30 * GB, 0)}, tmp_path)
    assert result.returncode != 0 and storage is None
    assert [c.body["status"] for c in calls] == ["started", "failed"]
    assert calls[1].body["message"] == (
        "found 1 disk(s) of at least 20000000000 bytes for the OS, the controller layout needs 2"
    )


def test_pinned_disk_comes_first(site: Site, tmp_path: Path) -> None:
    disks = {"sda": (500 * GB, 0), "sdb": (500 * GB, 0), "nvme0n1": (800 * GB, 0)}
    result, storage, _ = run_pre(site, "cmp1", disks, tmp_path, name="sdb")
    assert result.returncode == 0, result.stderr
    assert storage is not None and "ignoredisk --only-use=sdb\n" in storage


def test_disk_pinned_by_serial_is_found_in_sysfs_without_udev(site: Site, tmp_path: Path) -> None:
    disks = {"vda": (40 * GB, 0), "vdb": (40 * GB, 0)}
    serials = {"vda": "NEW1-D0", "vdb": "NEW1-D1"}  # what `provisioner discovered` reported
    result, storage, _ = run_pre(site, "cmp1", disks, tmp_path, serials, serial="NEW1-D1")
    assert result.returncode == 0, result.stderr
    assert storage is not None and "ignoredisk --only-use=vdb\n" in storage


def test_pinned_disk_missing_fails(site: Site, tmp_path: Path) -> None:
    result, storage, calls = run_pre(site, "cmp1", {"sda": (500 * GB, 0)}, tmp_path, name="sdq")
    assert result.returncode != 0 and storage is None
    assert calls[-1].body == {
        "status": "failed",
        "message": "no usable disk matches the hint name=sdq",
    }

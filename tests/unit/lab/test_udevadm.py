"""The lab installer's udevadm: `settle` as it means without a udev daemon, run by busybox sh."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from provisioner_lab.installer import DATA_FILES, FILES_DIR

UDEVADM = FILES_DIR / "udevadm.sh"


def udevadm(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "PROVISIONER_SYSFS": str(tmp_path / "sys"),
        "PROVISIONER_DEVFS": str(tmp_path / "dev"),
    }
    return subprocess.run(
        ["busybox", "sh", str(UDEVADM), *args], capture_output=True, text=True, env=env, timeout=30
    )


def block_device(tmp_path: Path, name: str, node: bool) -> None:
    (tmp_path / "sys" / "class" / "block" / name).mkdir(parents=True)
    (tmp_path / "sys" / "class" / "block" / name / "dev").write_text("254:0\n")
    (tmp_path / "dev").mkdir(exist_ok=True)
    if node:
        (tmp_path / "dev" / name).touch()


def test_it_is_the_installer_s_udevadm_command() -> None:
    assert DATA_FILES["usr/bin/udevadm"] == "udevadm.sh"


def test_settle_returns_at_once_when_every_disk_has_its_node(tmp_path: Path) -> None:
    block_device(tmp_path, "vda", node=True)
    block_device(tmp_path, "vda1", node=True)
    started = time.monotonic()
    done = udevadm(tmp_path, "settle", "--timeout=60")
    assert done.returncode == 0, done.stderr
    assert done.stdout == done.stderr == ""
    assert time.monotonic() - started < 5


def test_settle_times_out_naming_the_disk_without_a_node(tmp_path: Path) -> None:
    block_device(tmp_path, "vda", node=True)
    block_device(tmp_path, "vdb", node=False)
    done = udevadm(tmp_path, "settle", "-t", "1")
    assert done.returncode == 1
    assert "no device node for: vdb" in done.stderr


def test_other_commands_fail_clearly_not_silently(tmp_path: Path) -> None:
    done = udevadm(tmp_path, "trigger")
    assert done.returncode == 2
    assert "'trigger' is not in the lab installer" in done.stderr

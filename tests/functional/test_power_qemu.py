"""The virtual BMC with a real qemu node: power on starts it, off kills it, and a
guest reboot (qemu exits under -no-reboot) boots again with the boot device in
force, the one-time device spent.

The node is tiny: a blank 1 MiB disk and a user-mode NIC (restrict=on: no
traffic leaves qemu). SeaBIOS finds nothing to boot and reboots after 0.5 s,
which is exactly the guest reboot we need.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from power_support import driver, free_ports, ipmitool, running, spec

from provisioner_lab.vbmc.qemu import DiskSpec, NicSpec, QemuSpec

pytestmark = pytest.mark.functional

PASSWORD = "qemu-Secret-5"


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


def _state(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text())


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_power_controls_the_qemu_process_and_reboots_take_the_boot_flags(
    tmp_path: Path,
) -> None:
    disk = tmp_path / "disk.raw"
    with disk.open("wb") as fh:
        fh.truncate(1024 * 1024)
    qemu = QemuSpec(
        name="tiny",
        nics=[NicSpec(mac="52:54:00:00:03:01", user="restrict=on")],
        disks=[DiskSpec(path=disk, format="raw")],
        memory_mb=128,
        serial_log=tmp_path / "tiny.serial.log",
        extra_args=["-boot", "reboot-timeout=500"],
    )
    (port,) = free_ports(1)
    state_file = tmp_path / "tiny.json"
    with running([spec("tiny", port, PASSWORD, tmp_path, qemu=qemu)]):
        drv = driver("tiny", port, PASSWORD, timeout=30)
        assert drv.power_state() == "off"
        drv.set_boot_device("network", persistent=False, uefi=False)
        drv.power_on()

        first = _state(state_file)["qemu_pid"]
        argv = _cmdline(first)
        assert argv[0].endswith("qemu-system-x86_64")
        assert "-no-reboot" in argv
        nic = next(a for a in argv if a.startswith("virtio-net-pci"))
        assert "mac=52:54:00:00:03:01" in nic and "bootindex=1" in nic  # network first
        assert "Chassis Power is on" in ipmitool(port, PASSWORD, "chassis", "power", "status")

        # the guest reboots: qemu exits, the BMC boots it again, now from disk
        _wait(lambda: _state(state_file)["boots"] >= 2, 120, "the guest to reboot")
        second = _state(state_file)["qemu_pid"]
        assert second != first and not _alive(first)
        _wait(lambda: _alive(second) or _state(state_file)["boots"] > 2, 30, "qemu restarted")
        assert _state(state_file)["last_boot_device"] == "disk"
        if _alive(second):
            blk = next(a for a in _cmdline(second) if a.startswith("virtio-blk-pci"))
            assert "bootindex=1" in blk  # disk first: the one-time network boot is spent
        assert drv.power_state() == "on"

        ipmitool(port, PASSWORD, "chassis", "power", "off")
        current = _state(state_file)
        assert current["power"] == "off" and current["qemu_pid"] is None
        _wait(lambda: not any(_alive(p) for p in (first, second)), 30, "qemu to be killed")
        assert drv.power_state() == "off"
        assert not [
            pid
            for pid in os.listdir("/proc")
            if pid.isdigit() and _alive(int(pid)) and _has_qmp(int(pid), tmp_path)
        ]


def _has_qmp(pid: int, tmp_path: Path) -> bool:
    try:
        return any(str(tmp_path / "tiny.qmp") in arg for arg in _cmdline(pid))
    except OSError:
        return False

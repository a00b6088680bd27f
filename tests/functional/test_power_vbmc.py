"""The virtual BMC driven by the project's IPMI driver and by ipmitool: one truth."""

from __future__ import annotations

from pathlib import Path

import pytest
from power_support import driver, free_ports, ipmitool, running, spec

pytestmark = pytest.mark.functional

PASSWORD = "vbmc-Secret-1"


@pytest.fixture
def bmc(tmp_path: Path):  # type: ignore[no-untyped-def]
    (port,) = free_ports(1)
    with running([spec("vnode1", port, PASSWORD, tmp_path)]):
        yield port


def bootparam(port: int) -> str:
    return ipmitool(port, PASSWORD, "chassis", "bootparam", "get", "5")


def test_power_state_is_the_same_for_the_driver_and_ipmitool(bmc: int) -> None:
    drv = driver("vnode1", bmc, PASSWORD)
    assert drv.power_state() == "off"
    assert "Chassis Power is off" in ipmitool(bmc, PASSWORD, "chassis", "power", "status")

    drv.power_on()
    assert "Chassis Power is on" in ipmitool(bmc, PASSWORD, "chassis", "power", "status")

    ipmitool(bmc, PASSWORD, "chassis", "power", "off")
    assert drv.power_state() == "off"

    ipmitool(bmc, PASSWORD, "chassis", "power", "on")
    assert drv.power_state() == "on"
    drv.power_cycle()
    assert drv.power_state() == "on"
    drv.power_off()
    assert "Chassis Power is off" in ipmitool(bmc, PASSWORD, "chassis", "power", "status")


def test_boot_flags_are_the_same_for_the_driver_and_ipmitool(bmc: int) -> None:
    drv = driver("vnode1", bmc, PASSWORD)
    drv.set_boot_device("network", persistent=False, uefi=True)
    text = bootparam(bmc)
    assert "Boot Flag Valid" in text
    assert "Options apply to only next boot" in text
    assert "BIOS EFI boot" in text
    assert "Force PXE" in text

    ipmitool(bmc, PASSWORD, "chassis", "bootdev", "disk", "options=persistent")
    assert drv.boot_device() == {
        "device": "disk",
        "valid": True,
        "persistent": True,
        "uefi": False,
    }


def test_one_time_boot_device_applies_to_exactly_one_boot(bmc: int) -> None:
    drv = driver("vnode1", bmc, PASSWORD)
    drv.set_boot_device("disk", persistent=True)
    drv.set_boot_device("network")  # next boot only
    assert drv.boot_device()["device"] == "network"
    drv.power_on()  # this boot takes the one-time device...
    after = drv.boot_device()
    assert after["device"] == "disk" and after["persistent"]  # ...and falls back
    assert "Force Boot from default Hard-Drive" in bootparam(bmc)


def test_state_survives_a_restart_of_the_virtual_bmc(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    specs = [spec("vnode1", port, PASSWORD, tmp_path)]
    with running(specs):
        drv = driver("vnode1", port, PASSWORD)
        drv.power_on()
        drv.set_boot_device("network", persistent=True, uefi=False)
    with running(specs):
        assert "Chassis Power is on" in ipmitool(port, PASSWORD, "chassis", "power", "status")
        text = bootparam(port)
        assert "Options apply to all future boots" in text
        assert "Force PXE" in text
        assert "BIOS PC Compatible (legacy) boot" in text


def test_wrong_password_is_rejected_by_the_virtual_bmc(bmc: int) -> None:
    from provisioner.power import BmcAuthError

    with pytest.raises(BmcAuthError) as info:
        driver("vnode1", bmc, "not-the-password", timeout=10).power_state()
    assert "credentials rejected" in str(info.value)
    assert "not-the-password" not in str(info.value)

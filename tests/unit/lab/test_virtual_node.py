"""Boot-flag and power semantics of a (simulated) virtual node, and their persistence."""

from __future__ import annotations

from pathlib import Path

from provisioner_lab.vbmc.node import VirtualNode


def test_one_time_device_applies_to_exactly_one_boot(tmp_path: Path) -> None:
    node = VirtualNode("n1", tmp_path / "n1.json")
    node.set_boot("disk", persistent=True, uefi=True)
    node.set_boot("network", persistent=False, uefi=True)
    assert node.boot_flags() == ("network", False, True)
    node.power_on()
    assert node.state.last_boot_device == "network"
    assert node.boot_flags() == ("disk", True, True)  # fell back to the persistent one
    node.reset()
    assert node.state.last_boot_device == "disk"
    assert node.state.boots == 2


def test_persistent_device_replaces_a_pending_one_time_choice(tmp_path: Path) -> None:
    node = VirtualNode("n1", tmp_path / "n1.json")
    node.set_boot("network", persistent=False, uefi=False)
    node.set_boot("disk", persistent=True, uefi=False)
    node.power_on()
    assert node.state.last_boot_device == "disk"


def test_power_on_twice_is_one_boot(tmp_path: Path) -> None:
    node = VirtualNode("n1", tmp_path / "n1.json")
    node.power_on()
    node.power_on()
    assert node.state.boots == 1
    assert node.power_state() == "on"
    node.soft_off()  # a simulated guest obeys the power button at once
    assert node.power_state() == "off"


def test_state_survives_a_new_bmc_process(tmp_path: Path) -> None:
    first = VirtualNode("n1", tmp_path / "n1.json")
    first.set_boot("network", persistent=True, uefi=False)
    first.set_boot("disk", persistent=False, uefi=False)
    first.power_on()
    first.set_boot("network", persistent=False, uefi=True)

    again = VirtualNode("n1", tmp_path / "n1.json")
    assert again.power_state() == "on"
    assert again.boot_flags() == ("network", False, True)
    assert again.state.boot.persistent == "network"
    assert again.state.boots == 1

"""The qemu command line of a virtual node (pure: spec in, argv out)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner_lab.vbmc.qemu import DiskSpec, NicSpec, QemuSpec, build_qemu_argv


def _spec(**kw: object) -> QemuSpec:
    base: dict[str, object] = {
        "name": "cmp1",
        "nics": [NicSpec(mac="52:54:00:00:02:12", tap="pv3tap0")],
        "disks": [
            DiskSpec(path=Path("/img/cmp1-a.qcow2")),
            DiskSpec(path=Path("/img/b.raw"), format="raw"),
        ],
        "serial_log": Path("/logs/cmp1.serial"),
    }
    base.update(kw)
    return QemuSpec.model_validate(base)


def _devices(argv: list[str], prefix: str) -> list[str]:
    return [a for a in argv if a.startswith(prefix)]


def test_network_boot_puts_the_nic_first() -> None:
    argv = build_qemu_argv(_spec(), "network")
    (nic,) = _devices(argv, "virtio-net-pci")
    assert "bootindex=1" in nic and "mac=52:54:00:00:02:12" in nic
    disks = _devices(argv, "virtio-blk-pci")
    assert [d.rsplit("bootindex=", 1)[1] for d in disks] == ["2", "3"]


def test_disk_boot_puts_the_first_disk_first() -> None:
    argv = build_qemu_argv(_spec(), "disk")
    disks = _devices(argv, "virtio-blk-pci")
    assert [d.rsplit("bootindex=", 1)[1] for d in disks] == ["1", "2"]
    (nic,) = _devices(argv, "virtio-net-pci")
    assert nic.endswith("bootindex=3")


def test_software_emulation_no_display_serial_to_file_and_no_reboot() -> None:
    argv = build_qemu_argv(_spec(), "disk", Path("/run/cmp1.qmp"))
    joined = " ".join(argv)
    assert "-accel tcg" in joined
    assert "-display none" in joined
    assert "-chardev file,id=serial0,path=/logs/cmp1.serial,append=on" in joined
    assert "-serial chardev:serial0" in joined
    assert "-no-reboot" in argv
    assert "-qmp unix:/run/cmp1.qmp,server=on,wait=off" in joined
    assert "file=/img/b.raw,if=none,id=disk1,format=raw" in joined


def test_tap_and_user_mode_networking() -> None:
    argv = build_qemu_argv(
        _spec(
            nics=[
                NicSpec(mac="52:54:00:00:02:12", tap="pv3tap0"),
                NicSpec(mac="52:54:00:00:02:13", user="bootfile=tftp://10.0.2.2:6969/x"),
            ]
        ),
        "network",
    )
    netdevs = [argv[i + 1] for i, a in enumerate(argv) if a == "-netdev"]
    assert netdevs == [
        "tap,id=net0,ifname=pv3tap0,script=no,downscript=no",
        "user,id=net1,bootfile=tftp://10.0.2.2:6969/x",
    ]


def test_uefi_uses_ovmf_code_read_only_and_the_nodes_own_vars() -> None:
    argv = build_qemu_argv(
        _spec(boot_mode="uefi", ovmf_vars=Path("/state/cmp1.vars.fd")), "network"
    )
    pflash = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive" and "pflash" in argv[i + 1]]
    assert pflash == [
        "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
        "if=pflash,format=raw,unit=1,file=/state/cmp1.vars.fd",
    ]


def test_uefi_without_a_vars_copy_is_an_error_naming_the_node() -> None:
    with pytest.raises(ValueError, match="node cmp1: ovmf_vars"):
        build_qemu_argv(_spec(boot_mode="uefi"), "disk")


def test_unknown_boot_device_is_refused() -> None:
    with pytest.raises(ValueError, match="node cmp1: boot device 'cdrom'"):
        build_qemu_argv(_spec(), "cdrom")


def test_a_node_without_nics_gets_no_default_nic() -> None:
    argv = build_qemu_argv(_spec(nics=[]), "disk")
    assert argv[argv.index("-nic") + 1] == "none"


def test_firmware_pxe_drops_the_nic_rom_so_ovmf_starts_the_chain() -> None:
    nic = NicSpec(mac="52:54:00:00:02:12", tap="pv3tap0", firmware_pxe=True)
    spec = _spec(nics=[nic], boot_mode="uefi", ovmf_vars=Path("/v"))
    (device,) = _devices(build_qemu_argv(spec, "network"), "virtio-net-pci")
    assert device.endswith(",romfile=")
    (default,) = _devices(build_qemu_argv(_spec(), "network"), "virtio-net-pci")
    assert "romfile" not in default  # qemu's own iPXE ROM


def test_firmware_pxe_is_refused_for_bios_and_together_with_a_rom() -> None:
    nic = {"mac": "52:54:00:00:02:12", "tap": "pv3tap0", "firmware_pxe": True}
    needs_uefi = r"node cmp1: nics\[0\]\.firmware_pxe needs boot_mode uefi"
    with pytest.raises(ValueError, match=needs_uefi):
        _spec(nics=[nic])
    with pytest.raises(ValueError, match="rom and firmware_pxe exclude each other"):
        NicSpec.model_validate({**nic, "rom": "/usr/lib/ipxe/qemu/efi-virtio.rom"})

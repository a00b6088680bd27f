"""The qemu command line of a virtual node: a pure function from a spec to argv.

Used by the virtual BMC and by the built-in lab. Software emulation (TCG: KVM
fails on this kind of machine), no display, the serial console in a log file,
virtio disks, virtio-net NICs with Debian's iPXE ROMs, OVMF for UEFI. The boot
device is expressed with ``bootindex`` (honoured by SeaBIOS and by OVMF), and
``-no-reboot`` turns a guest reboot into a qemu exit so the BMC decides what the
next boot is, as a real BMC's boot flags do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from provisioner import programs
from provisioner.inventory.macs import nic_mac

# qemu's default NIC ROM here is Debian ipxe-qemu's efi-virtio.rom (legacy + EFI
# iPXE in one file, found through qemu's data dirs, see `qemu-system-x86_64 -L help`).
# Measured with qemu 7.2: naming a ROM explicitly (romfile=, even that same file)
# made SeaBIOS skip the NIC's ROM entirely, so no network boot. Only pass romfile
# when a NIC asks for a different ROM.
IPXE_ROM_DIR = Path(programs.location("efi-virtio.rom")).parent
OVMF_CODE = Path(programs.location("OVMF_CODE_4M.fd"))
OVMF_VARS_TEMPLATE = Path(programs.location("OVMF_VARS_4M.fd"))


class NicSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # the inventory's MAC rule (inventory/macs.py), without importing the site models:
    # every BMC process of `vbmc serve` loads this module
    mac: Annotated[str, AfterValidator(nic_mac)]
    tap: str | None = Field(None, description="Attach to this existing tap device")
    user: str | None = Field(
        None,
        description="qemu user-mode networking options (e.g. 'restrict=on' or "
        "'bootfile=tftp://10.0.2.2:6969/boot.ipxe'); used when tap is not set",
    )
    rom: Path | None = Field(None, description="NIC option ROM; default: qemu's (iPXE)")
    firmware_pxe: bool = Field(
        False,
        description="No option ROM: the firmware's own PXE client (OVMF's; UEFI only) "
        "starts the boot and fetches iPXE over TFTP, as a vendor NIC does",
    )

    @model_validator(mode="after")
    def _one_rom_choice(self) -> NicSpec:
        if self.firmware_pxe and self.rom is not None:
            raise ValueError(f"NIC {self.mac}: rom and firmware_pxe exclude each other")
        return self


class DiskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path
    format: Literal["qcow2", "raw"] = "qcow2"
    #: what the guest reads as the disk's serial number (/sys/block/vdX/serial)
    serial: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,20}$")


class QemuSpec(BaseModel):
    """One virtual node. Paths are absolute or relative to the caller's cwd."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    nics: list[NicSpec] = Field(default_factory=list)
    disks: list[DiskSpec] = Field(default_factory=list)
    boot_mode: Literal["uefi", "bios"] = "bios"
    memory_mb: int = Field(512, ge=64)
    cpus: int = Field(1, ge=1)
    machine: str = "q35"
    serial_log: Path | None = None
    ovmf_code: Path = OVMF_CODE
    ovmf_vars: Path | None = Field(
        None, description="This node's writable copy of OVMF_VARS (made from the template)"
    )
    qemu_binary: str = "qemu-system-x86_64"
    extra_args: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _firmware_pxe_needs_uefi(self) -> QemuSpec:
        for i, nic in enumerate(self.nics):
            if nic.firmware_pxe and self.boot_mode != "uefi":
                raise ValueError(
                    f"node {self.name}: nics[{i}].firmware_pxe needs boot_mode uefi "
                    "(SeaBIOS has no PXE client of its own)"
                )
        return self


def boot_indexes(spec: QemuSpec, device: str) -> tuple[list[int], list[int]]:
    """bootindex for each disk and NIC: the chosen device class first."""
    disks, nics = len(spec.disks), len(spec.nics)
    if device == "network":
        return [nics + i + 1 for i in range(disks)], [i + 1 for i in range(nics)]
    return [i + 1 for i in range(disks)], [disks + i + 1 for i in range(nics)]


def build_qemu_argv(spec: QemuSpec, boot_device: str, qmp_socket: Path | None = None) -> list[str]:
    """The full argv for one boot of the node, network or disk first."""
    if boot_device not in ("network", "disk"):
        raise ValueError(f"node {spec.name}: boot device '{boot_device}' is not network or disk")
    argv = [
        spec.qemu_binary,
        "-name",
        f"{spec.name},process=qemu-{spec.name}",
        "-machine",
        spec.machine,
        "-accel",
        "tcg",
        "-m",
        str(spec.memory_mb),
        "-smp",
        str(spec.cpus),
        "-display",
        "none",
        "-vga",
        "none",
        "-monitor",
        "none",
        "-no-reboot",
    ]
    if spec.serial_log:
        # append: every boot of the node (installer, then local disk) stays in one log
        argv += ["-chardev", f"file,id=serial0,path={spec.serial_log},append=on"]
        argv += ["-serial", "chardev:serial0"]
    else:
        argv += ["-serial", "null"]
    if qmp_socket is not None:
        argv += ["-qmp", f"unix:{qmp_socket},server=on,wait=off"]
    if spec.boot_mode == "uefi":
        if spec.ovmf_vars is None:
            raise ValueError(f"node {spec.name}: ovmf_vars: required for UEFI boot")
        argv += [
            "-drive",
            f"if=pflash,format=raw,unit=0,readonly=on,file={spec.ovmf_code}",
            "-drive",
            f"if=pflash,format=raw,unit=1,file={spec.ovmf_vars}",
        ]
    disk_idx, nic_idx = boot_indexes(spec, boot_device)
    for i, (disk, index) in enumerate(zip(spec.disks, disk_idx, strict=True)):
        argv += [
            "-drive",
            f"file={disk.path},if=none,id=disk{i},format={disk.format}",
            "-device",
            f"virtio-blk-pci,drive=disk{i},bootindex={index}"
            + (f",serial={disk.serial}" if disk.serial else ""),
        ]
    for i, (nic, index) in enumerate(zip(spec.nics, nic_idx, strict=True)):
        if nic.tap:
            netdev = f"tap,id=net{i},ifname={nic.tap},script=no,downscript=no"
        else:
            netdev = f"user,id=net{i}" + (f",{nic.user}" if nic.user else "")
        argv += [
            "-netdev",
            netdev,
            "-device",
            f"virtio-net-pci,netdev=net{i},mac={nic.mac},bootindex={index}"
            + (f",romfile={nic.rom}" if nic.rom else ",romfile=" if nic.firmware_pxe else ""),
        ]
    if not spec.nics:
        argv += ["-nic", "none"]
    return argv + list(spec.extra_args)

"""What `lab up` needs on this host, checked before it starts anything.

Without this check a missing piece showed up minutes later, as one of the
detached processes dying (``serve`` without iPXE binaries), after the lab
network and BIND had been started and torn down again. Checking first makes
the cause the first and only thing the user reads, with the packages to
install, and leaves nothing half started.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from provisioner.bootserver.dnsmasq import DNSMASQ
from provisioner.bootserver.tftp import DEBIAN_IPXE_DIR, IPXE_BINARIES
from provisioner.errors import ProvisionerError
from provisioner.lab.initramfs import BUSYBOX
from provisioner.lab.installer import _SEARCH_PATH as INSTALLER_PATH
from provisioner.lab.installer import PROGRAMS as INSTALLER_PROGRAMS
from provisioner.lab.network import NetworkMode
from provisioner.power.virtual.qemu import IPXE_ROM_DIR, OVMF_CODE, OVMF_VARS_TEMPLATE


class LabPrerequisiteMissing(ProvisionerError):
    """Something `lab up` needs is not installed on this host."""


@dataclass(frozen=True)
class Need:
    what: str  # what the user would look for: a program or a file
    package: str  # the Debian package that provides it
    why: str  # which part of the lab uses it
    present: Callable[[], bool]


def _program(name: str, path: str | None = None) -> Callable[[], bool]:
    """Looked up as it is run: on PATH, or on the installer builder's own path."""
    return lambda: shutil.which(name, path=path) is not None


def _file(path: Path) -> Callable[[], bool]:
    return path.is_file


def _any_file(folder: Path, names: tuple[str, ...]) -> Callable[[], bool]:
    return lambda: any((folder / name).is_file() for name in names)


def lab_needs(mode: NetworkMode) -> list[Need]:
    """Everything `lab up` (and the processes it starts) needs in ``mode``."""
    needs = [
        Need("qemu-system-x86_64", "qemu-system-x86", "runs the lab nodes",
             _program("qemu-system-x86_64")),
        Need(str(IPXE_ROM_DIR / "efi-virtio.rom"), "ipxe-qemu", "the nodes' network boot ROM",
             _file(IPXE_ROM_DIR / "efi-virtio.rom")),
        Need(str(OVMF_CODE), "ovmf", "UEFI firmware of the UEFI nodes", _file(OVMF_CODE)),
        Need(str(OVMF_VARS_TEMPLATE), "ovmf", "UEFI firmware of the UEFI nodes",
             _file(OVMF_VARS_TEMPLATE)),
        Need(f"iPXE binaries in {DEBIAN_IPXE_DIR}", "ipxe", "served over TFTP by 'serve'",
             _any_file(DEBIAN_IPXE_DIR, IPXE_BINARIES)),
        Need("named", "bind9", "the lab's DNS server", _program("named")),
        Need("dig", "bind9-dnsutils", "checks the lab's DNS server answers", _program("dig")),
        Need("openssl", "openssl", "hashes the lab's root password", _program("openssl")),
        Need(str(BUSYBOX), "busybox-static", "the lab installer's initramfs", _file(BUSYBOX)),
    ]  # fmt: skip
    needs += [
        Need(program, package, "copied into the lab installer", _program(program, INSTALLER_PATH))
        for program, package in INSTALLER_PROGRAMS.items()
    ]
    if mode == "netns":
        needs += [
            Need("ip", "iproute2", "the lab network namespace", _program("ip")),
            Need(DNSMASQ, "dnsmasq-base", "DHCP on the lab network", _program(DNSMASQ)),
        ]
    return needs


def missing(needs: list[Need]) -> list[Need]:
    return [need for need in needs if not need.present()]


def check(mode: NetworkMode) -> None:
    """Raise one error naming everything missing and the one command that installs it."""
    absent = missing(lab_needs(mode))
    if not absent:
        return
    packages = sorted({need.package for need in absent})
    lines = [f"  {need.what}: {need.why} (Debian package {need.package})" for need in absent]
    raise LabPrerequisiteMissing(
        f"lab up: {len(absent)} prerequisite(s) missing on this host, nothing was started:\n"
        + "\n".join(lines)
        + f"\n  install: apt-get install {' '.join(packages)}"
    )

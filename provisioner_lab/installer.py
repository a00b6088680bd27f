"""The lab installer: test equipment that behaves like Anaconda for the pipeline.

A Debian cloud kernel plus a busybox initramfs whose /init is
``installer_files/installer.sh``: it reads ``inst.ks=`` from the kernel command
line, fetches the kickstart, runs its %pre sections, partitions the virtual
disks (sfdisk, mdadm, lvm), makes filesystems, runs %post (so the callbacks the
kickstart carries are what report back) and %onerror on failure, writes a
marker naming the node on the root filesystem and reboots. With a ``liveimg``
kickstart it deploys the image onto the layout, configures it and installs GRUB
(installer_files/image.sh), so the node boots a real OS from its disks; without
one it installs no OS. It is not Anaconda and its banner says so.

``installer_plan`` lists what goes into the image (pure); ``build_lab_installer``
fetches the kernel and writes the initramfs (cached by a digest of the plan).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from provisioner import programs
from provisioner.errors import ProvisionerError
from provisioner_lab.initramfs import INIT_PROLOGUE, build_initramfs
from provisioner_lab.kernel import Kernel, fetch_cloud_kernel
from provisioner_lab.localboot import MESSAGE, efi_head, mbr_head

log = logging.getLogger(__name__)

FILES_DIR = Path(__file__).resolve().parent / "installer_files"

#: Kernel modules the installer loads (dependencies are added by the builder).
MODULES: tuple[str, ...] = (
    "virtio_pci",
    "virtio_net",
    "virtio_blk",
    "virtio_rng",
    "virtio_scsi",
    "sd_mod",
    "md_mod",
    "raid0",
    "raid1",
    "raid10",
    "dm_mod",
    "vfat",
    "nls_cp437",
    "nls_iso8859_1",
    "nls_ascii",
)

#: Host programs copied in with their libraries (their packages: provisioner/programs.py).
PROGRAMS: tuple[str, ...] = (
    "sfdisk",
    "mkfs.vfat",
    "mke2fs",
    "mkswap",
    "mdadm",
    "lvm",
    "curl",
    # Kickstart scripts expect RHEL's /bin/sh (bash) and the full tools they use.
    "bash",
    "sort",
    "lsblk",
    # liveimg: GNU tar (zstd, xattrs, ACLs; busybox tar has neither) and zstd
    "tar",
    "zstd",
)

#: Data files: path in the initramfs -> file in installer_files/.
DATA_FILES: dict[str, str] = {
    "lab/installer.sh": "installer.sh",
    "lab/storage.sh": "storage.sh",
    "lab/image.sh": "image.sh",
    "lab/discover.sh": "discover.sh",  # provisioner.discovery=URL: the site's discovery OS
    "lab/ks-split.awk": "ks-split.awk",
    "lab/udhcpc.sh": "udhcpc.sh",
    # Anaconda has udev; the kickstarts we generate run `udevadm settle` in %pre.
    "usr/bin/udevadm": "udevadm.sh",
    "etc/lvm/lvm.conf": "lvm.conf",
}

INIT_SCRIPT = INIT_PROLOGUE + "exec /bin/sh /lab/installer.sh\n"

#: Kernel arguments every lab installer boot wants: serial console, and a
#: panic turns into a reboot (so a qemu run with -no-reboot exits instead of hanging).
# no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer check can fail
# ("IO-APIC + timer doesn't work!" panic); the check is for broken hardware, not for us
BASE_KERNEL_ARGS = "console=ttyS0,115200 panic=-1 no_timer_check"

#: Where the Debian kernel is cached by default (shared by lab runs and tests).
DEFAULT_CACHE_DIR = Path("/var/cache/provisioner-lab")


_BUILDER_SOURCES = tuple(
    Path(__file__).resolve().parent / name for name in ("initramfs.py", "installer.py")
)


class InstallerBuildError(ProvisionerError):
    """The lab installer image could not be built."""


@dataclass(frozen=True)
class InstallerPlan:
    programs: tuple[Path, ...]
    files: dict[str, bytes]
    modules: tuple[str, ...]
    init: str

    def digest(self, kernel_version: str) -> str:
        h = hashlib.sha256(kernel_version.encode())
        for program in self.programs:
            h.update(str(program).encode())
            h.update(str(program.stat().st_mtime_ns).encode())
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + self.files[name])
        h.update("\0".join(self.modules).encode())
        h.update(self.init.encode())
        for builder in _BUILDER_SOURCES:  # a change to the builders rebuilds the image
            h.update(builder.read_bytes())
        return h.hexdigest()[:16]


@dataclass(frozen=True)
class LabInstaller:
    kernel: Path
    initrd: Path
    kernel_version: str


def installer_plan() -> InstallerPlan:
    """What goes into the installer's initramfs; names the package of a missing program.

    The system's own copies (not PATH's): each lands at the same path in the image."""
    found = [Path(programs.path(name, search=programs.DEBIAN_PATH)) for name in PROGRAMS]
    files = {dest: (FILES_DIR / src).read_bytes() for dest, src in DATA_FILES.items()}
    files["lab/mbr.head"] = mbr_head()
    files["lab/bootx64.head"] = efi_head()
    files["lab/localboot.msg"] = (MESSAGE + "\n").encode()
    return InstallerPlan(tuple(found), files, MODULES, INIT_SCRIPT)


def kernel_args(ks_url: str, ip: str = "dhcp", extra: str = "") -> str:
    """The kernel command line that starts an install from ``ks_url``."""
    args = f"{BASE_KERNEL_ARGS} ip={ip} inst.ks={ks_url}"
    return f"{args} {extra}".strip()


def build_lab_installer(
    out_dir: Path, cache_dir: Path, kernel: Kernel | None = None
) -> LabInstaller:
    """Write ``vmlinuz`` and ``initrd.img`` of the lab installer into ``out_dir``.

    The kernel comes from Debian (cached in ``cache_dir``); the initramfs is
    rebuilt only when its plan (scripts, programs, modules) changed.
    """
    plan = installer_plan()
    kernel = kernel or fetch_cloud_kernel(cache_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vmlinuz, initrd = out_dir / "vmlinuz", out_dir / "initrd.img"
    stamp = out_dir / "initrd.digest"
    digest = plan.digest(kernel.version)
    if initrd.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        log.debug("lab installer %s is up to date", initrd)
    else:
        log.info("building lab installer initramfs %s", initrd)
        build_initramfs(
            initrd,
            plan.init,
            kernel=kernel,
            modules=plan.modules,
            binaries=plan.programs,
            files=plan.files,
        )
        stamp.write_text(digest + "\n")
    if not vmlinuz.exists() or vmlinuz.stat().st_size != kernel.vmlinuz.stat().st_size:
        shutil.copyfile(kernel.vmlinuz, vmlinuz)
    return LabInstaller(vmlinuz, initrd, kernel.version)

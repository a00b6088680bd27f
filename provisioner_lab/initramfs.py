"""Build a small busybox initramfs (newc cpio, gzip) for lab nodes.

The archive holds busybox and its applet links, the kernel modules asked for
(with their dependencies, loaded by /init in order), extra host binaries with
the shared libraries ``ldd`` lists, extra files, and the given /init script.
"""

from __future__ import annotations

import gzip
import io
import re
import shutil
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from provisioner import programs
from provisioner.errors import ProvisionerError
from provisioner_lab.kernel import Kernel, module_bytes


class InitramfsError(ProvisionerError):
    pass


@dataclass
class CpioWriter:
    """Minimal writer of the 'newc' cpio format the kernel unpacks."""

    out: io.BytesIO = field(default_factory=io.BytesIO)
    _ino: int = 1
    _seen: set[str] = field(default_factory=set)

    def _entry(self, name: str, mode: int, data: bytes = b"") -> None:
        name = name.lstrip("/")
        if name in self._seen:
            return
        self._seen.add(name)
        encoded = name.encode() + b"\0"
        header = "070701" + "".join(
            f"{v:08x}"
            for v in (
                self._ino,
                mode,
                0,
                0,
                1,
                0,
                len(data),
                0,
                0,
                0,
                0,
                len(encoded),
                0,
            )
        )
        self._ino += 1
        self.out.write(header.encode() + encoded)
        self.out.write(b"\0" * (-(110 + len(encoded)) % 4))
        self.out.write(data)
        self.out.write(b"\0" * (-len(data) % 4))

    def directory(self, name: str) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self._entry("/".join(parts[:i]), stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        parent = str(Path(name.lstrip("/")).parent)
        if parent != ".":
            self.directory(parent)
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        parent = str(Path(name.lstrip("/")).parent)
        if parent != ".":
            self.directory(parent)
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        self.out.write(b"\0" * (-self.out.tell() % 512))
        return self.out.getvalue()


def shared_libraries(binary: Path) -> list[Path]:
    """The shared libraries a dynamically linked binary loads (via ldd)."""
    done = subprocess.run([programs.path("ldd"), str(binary)], capture_output=True, text=True)
    if done.returncode != 0:  # static binary
        return []
    libs = []
    for line in done.stdout.splitlines():
        m = re.search(r"(/\S+)\s+\(0x", line)
        if m:
            libs.append(Path(m.group(1)))
    return libs


def build_initramfs(
    out: Path,
    init_script: str,
    kernel: Kernel | None = None,
    modules: Iterable[str] = (),
    binaries: Iterable[Path] = (),
    files: dict[str, bytes] | None = None,
) -> Path:
    """Write a gzip'd newc initramfs to ``out``; /init loads the modules listed
    in /etc/modules.order (dependencies first) before running the given script."""
    busybox = Path(programs.path("busybox"))
    cpio = CpioWriter()
    for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "etc", "mnt", "run", "lib/modules"):
        cpio.directory(d)
    cpio.file("bin/busybox", busybox.read_bytes(), 0o755)
    # Real programs first: a busybox applet of the same path (usr/bin/sort) must not hide one.
    for binary in binaries:
        binary = Path(binary)
        if not binary.exists():
            raise InitramfsError(f"{binary} is missing on this host")
        cpio.file(str(binary), binary.read_bytes(), 0o755)
        for lib in shared_libraries(binary):
            cpio.file(str(lib), lib.resolve().read_bytes(), 0o755)
    applets = subprocess.run(
        [str(busybox), "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet not in ("bin/busybox",):
            cpio.symlink(applet, "/bin/busybox")
    order = []
    if kernel is not None and modules:
        for path in kernel.module_closure(list(modules)):
            name = path.name.removesuffix(".xz")
            cpio.file(f"lib/modules/{name}", module_bytes(path))
            order.append(name)
    cpio.file("etc/modules.order", "".join(f"{m}\n" for m in order).encode())
    for name, data in (files or {}).items():
        cpio.file(name, data, 0o755 if _executable(name) else 0o644)
    cpio.file("init", init_script.encode(), 0o755)
    tmp = out.with_suffix(out.suffix + ".partial")
    with gzip.open(tmp, "wb", compresslevel=6) as fh:
        fh.write(cpio.finish())
    shutil.move(tmp, out)
    return out


def _executable(name: str) -> bool:
    """Scripts, /init and anything put into a bin folder (a command such as udevadm)."""
    parts = name.strip("/").split("/")
    return name.endswith((".sh", "init")) or (len(parts) > 1 and parts[-2] in ("bin", "sbin"))


#: /init prologue: mount the basics and load the modules in order.
INIT_PROLOGUE = """#!/bin/busybox sh
/bin/busybox --install -s /bin 2>/dev/null
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do [ -n "$m" ] && insmod "/lib/modules/$m"; done < /etc/modules.order
"""

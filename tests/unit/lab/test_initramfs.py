"""The initramfs writer produces an archive the real cpio tool reads back."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

from provisioner import programs
from provisioner_lab.initramfs import INIT_PROLOGUE, build_initramfs


def test_initramfs_lists_init_busybox_and_extra_files(tmp_path: Path) -> None:
    image = build_initramfs(
        tmp_path / "initrd.img",
        INIT_PROLOGUE + "echo hello\n",
        files={"etc/lab/node": b"ctl1\n"},
        binaries=[Path("/bin/true")],
    )
    raw = gzip.decompress(image.read_bytes())
    listing = (
        subprocess.run(
            [programs.path("cpio"), "-t", "--quiet"], input=raw, capture_output=True, check=True
        )
        .stdout.decode()
        .split()
    )
    assert {"init", "bin/busybox", "bin/sh", "etc/lab/node", "bin/true"} <= set(listing)
    assert any(name.startswith("lib") and "libc.so" in name for name in listing)
    extract = tmp_path / "x"
    extract.mkdir()
    subprocess.run([programs.path("cpio"), "-id", "--quiet"], input=raw, cwd=extract, check=True)
    assert (extract / "etc/lab/node").read_text() == "ctl1\n"
    assert (extract / "init").read_text().endswith("echo hello\n")
    assert (extract / "init").stat().st_mode & 0o111

"""A real program put into the initramfs is not hidden by a busybox applet of the same path."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

from provisioner import programs
from provisioner_lab.initramfs import INIT_PROLOGUE, build_initramfs


def test_real_sort_beats_the_busybox_applet(tmp_path: Path) -> None:
    applets = subprocess.run(
        [programs.path("busybox"), "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "usr/bin/sort" in applets  # the clash this guards against
    image = build_initramfs(tmp_path / "i.img", INIT_PROLOGUE, binaries=[Path("/usr/bin/sort")])
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(
        [programs.path("cpio"), "-id", "--quiet"],
        input=gzip.decompress(image.read_bytes()),
        cwd=out,
        check=True,
    )
    sort = out / "usr/bin/sort"
    assert sort.is_file() and not sort.is_symlink()
    assert sort.read_bytes() == Path("/usr/bin/sort").read_bytes()

"""A built wheel carries the content folders, and the code finds them there."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_ships_content_folders_and_finds_them(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("provisioner-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for kind in ("pxe", "kickstart", "dns", "hooks"):
        assert f"provisioner/content/{kind}/README.md" in names
    assert not any(n.startswith(("pxe/", "dns/", "hooks/", "kickstart/")) for n in names)
    # the dashboard's pages, script and stylesheet (no build step: shipped as they are)
    for part in ("templates/base.html", "templates/racks.html", "static/ui.js", "static/ui.css"):
        assert f"provisioner/daemon/ui/{part}" in names

    unpacked = tmp_path / "site-packages"
    zipfile.ZipFile(wheel).extractall(unpacked)
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "from provisioner.content import bundled_dir; print(bundled_dir('pxe'))",
        ],
        env={"PYTHONPATH": str(unpacked)},
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.strip()
    assert Path(found) == unpacked / "provisioner" / "content" / "pxe"


def test_site_copy_takes_precedence_file_by_file(tmp_path: Path) -> None:
    from provisioner.content import ContentPaths, bundled_dir

    (tmp_path / "pxe").mkdir()
    (tmp_path / "pxe" / "README.md").write_text("site copy\n")
    paths = ContentPaths({"pxe": tmp_path / "pxe"})
    assert paths.find("pxe", "README.md") == tmp_path / "pxe" / "README.md"
    assert paths.find("kickstart", "README.md") == bundled_dir("kickstart") / "README.md"

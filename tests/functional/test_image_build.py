"""`provisioner image build` and `image list` for real: mmdebstrap from this machine's
apt sources, the cache hit on unchanged inputs, a new image when the role's packages change.

A small image (the essential variant plus busybox, about 40 s) keeps it quick; the lab
installer's test builds the real compute-like image.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from provisioner import programs

pytestmark = pytest.mark.functional


def cli(site_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "provisioner", "--site", str(site_dir / "site.yaml")]
    cmd += ["--state-dir", str(site_dir / "state"), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done


def set_role_packages(site_dir: Path, packages: list[str]) -> None:
    data = yaml.safe_load((site_dir / "site.yaml").read_text())
    data["profiles"]["tiny"] = {
        "kernel": "k",
        "initrd": "i",
        "image": {"variant": "essential", "packages": ["busybox"]},
    }
    data["roles"]["compute"]["image_packages"] = packages
    (site_dir / "site.yaml").write_text(yaml.safe_dump(data))


def members(image: Path) -> list[str]:
    tar = programs.path("tar")
    done = subprocess.run(
        [tar, "--zstd", "-tf", str(image)], capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


def test_build_caches_by_inputs_and_lists(site_dir: Path) -> None:
    programs.path("mmdebstrap")
    set_role_packages(site_dir, [])
    first = json.loads(
        cli(site_dir, "image", "build", "--profile=tiny", "--role=compute", "--json").stdout
    )
    assert len(first) == 1 and first[0]["fresh"] is True
    built = first[0]
    image = Path(built["file"])
    assert image == site_dir / "state" / "images" / built["key"] / "image.tar.zst"
    assert hashlib.sha256(image.read_bytes()).hexdigest() == built["sha256"]
    assert built["names"] == ["tiny/compute"]
    names = members(image)
    assert "./bin/busybox" in names or "./usr/bin/busybox" in names
    assert "./etc/hostname" not in names  # removed: the installer writes it per node

    again = json.loads(
        cli(site_dir, "image", "build", "--profile=tiny", "--role=storage", "--json").stdout
    )
    assert again[0]["fresh"] is False and again[0]["key"] == built["key"]  # same inputs
    listed = json.loads(cli(site_dir, "image", "list", "--json").stdout)
    assert [i["key"] for i in listed] == [built["key"]]
    assert listed[0]["names"] == ["tiny/compute", "tiny/storage"]
    table = cli(site_dir, "image", "list").stdout
    assert built["key"] in table and "tiny/compute" in table

    set_role_packages(site_dir, ["hello"])  # a role's packages changed: a new image
    other = json.loads(
        cli(site_dir, "image", "build", "--profile=tiny", "--role=compute", "--json").stdout
    )
    assert other[0]["fresh"] is True and other[0]["key"] != built["key"]
    assert "./usr/bin/hello" in members(Path(other[0]["file"]))
    assert len(json.loads(cli(site_dir, "image", "list", "--json").stdout)) == 2

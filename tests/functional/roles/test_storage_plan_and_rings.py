"""Storage nodes: Swift's rings built for real by swift-ring-builder from the bundle's ring
data, and prepare-disks.sh following the disk plan (refusing, untouched, when it cannot)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from provisioner import programs
from provisioner.inventory import Site
from provisioner.roles import DeployFacts, generate
from tests.functional.roles.conftest import run

pytestmark = pytest.mark.functional


def storage_site(site: Site, **settings: object) -> Site:
    roles = dict(site.roles)
    sto = roles["storage"]
    roles["storage"] = sto.model_copy(update={"settings": {**sto.settings, **settings}})
    return site.model_copy(update={"roles": roles})


def build_rings(bundle: dict[str, str], folder: Path) -> None:
    """Run the bundle's build-rings.sh in ``folder`` (swift-ring-builder does the work)."""
    if programs.find("swift-ring-builder") is None:
        pytest.skip("swift-ring-builder not installed (Debian package swift)")
    script = folder / "build-rings.sh"
    script.write_text(bundle["swift/build-rings.sh"])
    built = subprocess.run(
        programs.command(["sh", str(script)]),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr


def test_swift_rings_are_built_by_swifts_own_ring_builder(lab_site: Site, tmp_path: Path) -> None:
    bundle = generate(lab_site, "sto1", DeployFacts())
    data = json.loads(bundle["swift/rings.json"])
    script = tmp_path / "build-rings.sh"
    script.write_text(bundle["swift/build-rings.sh"])
    built = subprocess.run(
        programs.command(["sh", str(script)]),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    sto = sorted(lab_site.nodes_of_kind("storage"), key=lambda n: n.name)
    for ring in ("account", "container", "object"):
        assert (tmp_path / f"{ring}.ring.gz").stat().st_size > 0
        listing = run(["swift-ring-builder", str(tmp_path / f"{ring}.builder")]).stdout
        assert f"{2 ** data['part_power']} partitions, {data['replicas']:.6f} replicas" in listing
        port = {"account": 6202, "container": 6201, "object": 6200}[ring]
        # every storage node is a zone with the Swift disks of its plan (4 disks: 1 OS,
        # 1 cinder-lvm, 2 Swift)
        devices = set(re.findall(r"\s1\s+(\d+)\s+(\S+):(\d+)\s+\S+:\d+\s+(d\d+)\s", listing))
        want = {
            (str(zone), str(n.ip), str(port), dev)
            for zone, n in enumerate(sto, 1)
            for dev in ("d1", "d2")
        }
        assert devices == want, listing


def prepare(script: Path, state: Path, *disks: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PROVISIONER_DISKS_STATE": str(state)}
    return subprocess.run(
        ["sh", str(script), *disks],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_prepare_disks_refuses_a_plan_the_disks_cannot_meet(lab_site: Site, tmp_path: Path) -> None:
    site = storage_site(lab_site, disk_plan={"cinder-lvm": 1, "swift": 2})
    script = tmp_path / "prepare-disks.sh"
    script.write_text(generate(site, "sto1", DeployFacts())["storage/prepare-disks.sh"])
    run(["sh", "-n", str(script)])
    # two disks for a plan of three: refused before anything is touched (the names do not
    # even exist, so any command on them would fail differently)
    result = prepare(script, tmp_path / "state", "/dev/nonexistent-a", "/dev/nonexistent-b")
    assert result.returncode == 1
    assert "the disk plan needs 3 more data disk(s)" in result.stderr
    assert not (tmp_path / "state").exists()


def test_prepare_disks_hands_out_disks_by_the_plan(lab_site: Site, tmp_path: Path) -> None:
    """A plan of Ceph OSDs only touches no disk: they are listed for ceph-volume."""
    site = storage_site(
        lab_site,
        cinder_backend="rbd",
        ceph_monitors=["203.0.113.30"],
        disk_plan={"ceph-osd": "rest"},
    )
    script = tmp_path / "prepare-disks.sh"
    script.write_text(generate(site, "sto2", DeployFacts())["storage/prepare-disks.sh"])
    state = tmp_path / "state"
    result = prepare(script, state, "/dev/fake-b", "/dev/fake-c")
    assert result.returncode == 0, result.stderr
    assert (state / "ceph-osd-disks").read_text() == "/dev/fake-b\n/dev/fake-c\n"
    assert "ceph-osd 2, swift 0, unused 0" in (state / "done").read_text()
    again = prepare(script, state, "/dev/fake-b")  # a rerun of the hook changes nothing
    assert again.returncode == 0 and "already prepared" in again.stdout


LOAD = """
import sys
from swift.common.wsgi import loadapp
app = loadapp(sys.argv[1], allow_modify_pipeline=False)
print(type(app).__name__)
"""


@pytest.mark.parametrize("server", ["account", "container", "object", "proxy"])
def test_swift_loads_each_servers_pipeline(lab_site: Site, tmp_path: Path, server: str) -> None:
    """Swift's own WSGI loader (Debian's python3-swift, on the system Python) builds every
    filter and app of the pipeline: a misspelt egg, filter or section fails here."""
    needed = ["swift.common.wsgi"] + (["keystonemiddleware"] if server == "proxy" else [])
    missing = [name for name in needed if programs.find(name) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(programs.entry(n).package for n in missing)}")
    bundle = generate(lab_site, "sto1", DeployFacts())
    conf = tmp_path / f"{server}-server.conf"
    text = bundle[f"swift/{server}-server.conf"]
    if server == "proxy":  # the proxy opens the rings: the ones the bundle's script builds
        build_rings(bundle, tmp_path)
        assert "swift_dir = /etc/swift\n" in text
        text = text.replace("swift_dir = /etc/swift\n", f"swift_dir = {tmp_path}\n")
    conf.write_text(text)
    # Debian's own python3: make puts the venv's first on PATH, and the venv has no swift
    python = programs.path("python3", search=programs.DEBIAN_PATH)
    result = run([python, "-c", LOAD, str(conf)])
    outermost = "CatchErrorMiddleware" if server == "proxy" else "HealthCheckMiddleware"
    assert result.stdout.strip() == outermost
    broken = tmp_path / "broken.conf"
    broken.write_text(conf.read_text().replace("egg:swift#healthcheck", "egg:swift#healthchek"))
    assert run([python, "-c", LOAD, str(broken)], check=False).returncode != 0

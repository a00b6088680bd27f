"""Kickstarts of the example site: valid for pykickstart (RHEL 9, Fedora), consistent
storage, golden per role, and each node's token in its own kickstart only."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from provisioner import programs
from provisioner.install.kickstart import KickstartRenderer, render_kickstart
from provisioner.inventory import Site, load_site
from tests.unit.install.kshelpers import (
    BASE_URL,
    SAMPLE_DISKS,
    VERSIONS,
    expanded,
    ksvalidator,
    scripts,
    storage_heredoc,
    storage_problems,
    with_disks,
)

REPO = Path(__file__).resolve().parents[3]
GOLDEN = REPO / "tests" / "golden" / "kickstart"
# one node per role, and both firmware kinds (net2 boots legacy BIOS)
GOLDEN_NODES = ("ctl1", "net2", "sto1", "cmp1")


@pytest.fixture
def site(site_dir: Path) -> Site:
    return load_site(site_dir / "site.yaml")


def token_of(name: str) -> str:
    return f"TOKEN-{name}-x9Q2"


@pytest.fixture
def rendered(site: Site, tmp_path: Path) -> dict[str, Path]:
    """Every node's kickstart as served (disks chosen in %pre), and as anaconda sees
    it after %pre ran on a machine with sda, sdb, ... (the include filled in)."""
    renderer = KickstartRenderer(site)
    files = {}
    for node in site.nodes:
        text = renderer.render(node, token=token_of(node.name), base_url=BASE_URL)
        files[node.name] = tmp_path / f"{node.name}.ks"
        files[node.name].write_text(text)
        files[f"{node.name}+disks"] = tmp_path / f"{node.name}-expanded.ks"
        files[f"{node.name}+disks"].write_text(expanded(text, SAMPLE_DISKS))
    return files


@pytest.mark.parametrize("version", VERSIONS)
def test_every_kickstart_passes_ksvalidator(rendered: dict[str, Path], version: str) -> None:
    result = ksvalidator(rendered.values(), version)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout.lower() and "warning" not in result.stdout.lower()


def test_ksvalidator_is_really_checking(tmp_path: Path, site: Site) -> None:
    """The validator flags a broken kickstart, so the test above can fail."""
    text = render_kickstart(site, site.node("cmp1"), token="t", base_url=BASE_URL)
    broken = tmp_path / "broken.ks"
    broken.write_text(expanded(text, SAMPLE_DISKS).replace("--size=8192", "--size=lots"))
    assert ksvalidator([broken], "RHEL9").returncode != 0


def test_storage_commands_reference_only_what_exists(rendered: dict[str, Path]) -> None:
    for name, path in rendered.items():
        if name.endswith("+disks"):
            assert storage_problems(path.read_text()) == [], name


def test_storage_check_catches_what_pykickstart_misses(rendered: dict[str, Path]) -> None:
    good = rendered["ctl1+disks"].read_text()
    broken = (
        good.replace("--vgname=vg_os --name=mysql", "--vgname=vg_gone --name=mysql")
        .replace("volgroup vg_os pv.os", "volgroup vg_os pv.missing")
        .replace("logvol /var/log ", "logvol / ")
    )
    assert ksvalidator([rendered["ctl1+disks"]], "RHEL9").returncode == 0
    assert storage_problems(broken) == [
        "volgroup vg_os: physical volume pv.missing does not exist",
        "logvol /var/lib/mysql: volume group vg_gone does not exist",
        "2 file systems on /",
        "a mount point is used twice: "
        "['/', '/', '/boot', '/boot/efi', '/var/lib/mysql', '/var/lib/rabbitmq']",
    ]


def test_include_written_by_pre_is_the_inline_rendering(site: Site) -> None:
    """What %pre writes for disks sda.. is exactly what --disks sda,.. prints inline."""
    for node in site.nodes:
        served = render_kickstart(site, node, token="t", base_url=BASE_URL)
        inline = render_kickstart(site, node, token="t", base_url=BASE_URL, disks=SAMPLE_DISKS)
        body = with_disks(storage_heredoc(served), SAMPLE_DISKS)
        assert body.strip() in inline, node.name
        assert "%include" not in inline


def test_role_layouts_as_an_ha_cloud_needs_them(site: Site) -> None:
    def storage(name: str) -> str:
        node = site.node(name)
        return render_kickstart(site, node, token="t", base_url=BASE_URL, disks=SAMPLE_DISKS)

    ctl = storage("ctl1")
    assert "raid /boot --level=RAID1" in ctl and "raid pv.os --level=RAID1" in ctl
    assert "raid /boot/efi --level=RAID1 --device=efi --fstype=efi" in ctl
    assert "ignoredisk --only-use=sda,sdb\n" in ctl
    for mount in ("/var/lib/mysql", "/var/lib/rabbitmq"):
        assert f"logvol {mount} --vgname=vg_os" in ctl
    net2 = storage("net2")  # legacy BIOS: biosboot, no ESP
    assert "part biosboot --fstype=biosboot --size=1 --ondisk=sda" in net2
    assert "/boot/efi" not in net2 and "raid " not in net2
    sto = storage("sto1")  # the disk plan: one disk forms cinder-volumes, two left for Swift
    assert "ignoredisk --only-use=sda,sdb\n" in sto
    assert "volgroup cinder-volumes pv.data1\n" in sto
    cmp1 = storage("cmp1")
    assert "logvol /var/lib/nova --vgname=vg_os --name=nova --fstype=xfs --size=8192 --grow\n" in (
        cmp1
    )


def test_storage_disks_untouched_without_cinder_lvm(site_dir: Path) -> None:
    text = (
        (site_dir / "site.yaml")
        .read_text()
        .replace(
            "{cinder_backend: lvm, cinder_lvm_loss_accepted: true}",
            "{cinder_backend: rbd, ceph_monitors: [192.0.2.30]}",
        )
    )
    (site_dir / "site.yaml").write_text(text)
    site = load_site(site_dir / "site.yaml")
    ks = render_kickstart(site, site.node("sto1"), token="t", base_url=BASE_URL, disks=SAMPLE_DISKS)
    assert (
        "ignoredisk --only-use=sda\n" in ks and "clearpart --all --initlabel --drives=sda\n" in ks
    )
    assert "cinder" not in ks and "sdb" not in ks


def test_scripts_are_valid_bash_and_report_to_the_callback(rendered: dict[str, Path]) -> None:
    text = rendered["ctl1"].read_text()
    sections = scripts(text)
    assert len(sections["pre"]) == len(sections["post"]) == len(sections["onerror"]) == 1
    for kind, bodies in sections.items():
        for body in bodies:
            check = subprocess.run(
                [programs.path("bash"), "-n"], input=body, capture_output=True, text=True
            )
            assert check.returncode == 0, f"%{kind}: {check.stderr}"
            assert f"{BASE_URL}/api/v1/nodes/ctl1/callback" in body
    assert 'provisioner_report started "' in sections["pre"][0]
    assert 'provisioner_report installed "' in sections["post"][0]
    assert 'provisioner_report failed "' in sections["onerror"][0]
    assert "post-install bundle" in sections["post"][0]


def test_kickstart_content_from_the_inventory(site: Site) -> None:
    text = render_kickstart(site, site.node("ctl2"), token="tk", base_url=BASE_URL)
    hashed = (site.base_dir / "secrets" / "root-password.hash").read_text().strip()
    assert f"rootpw --iscrypted {hashed}\n" in text
    assert "url --url=http://192.0.2.2:8080/repo/rocky9/BaseOS/x86_64/os/\n" in text
    assert (
        "network --device=52:54:00:00:02:0c --bootproto=static --ip=192.0.2.12 "
        "--netmask=255.255.255.0 --gateway=192.0.2.1 --nameserver=192.0.2.3" in text
    )
    assert "network --hostname=ctl2.lab.example.test\n" in text
    assert "\nchrony\n" in text  # the controller role's packages
    assert "timezone UTC --utc\n" in text and "lang en_US.UTF-8\n" in text


def test_each_token_appears_only_in_its_own_kickstart(rendered: dict[str, Path]) -> None:
    texts = {n: p.read_text() for n, p in rendered.items() if not n.endswith("+disks")}
    for name, text in texts.items():
        for other in texts:
            count = text.count(token_of(other))
            if other == name:
                assert count == 3, f"{name}: own token in %pre, %post and %onerror"
            else:
                assert count == 0, f"{other}'s token leaked into {name}'s kickstart"


@pytest.mark.parametrize("name", GOLDEN_NODES)
def test_golden_kickstart_per_role(site: Site, name: str) -> None:
    """Review changes to the output here; regenerate with UPDATE_GOLDEN=1."""
    text = render_kickstart(site, site.node(name), token=f"GOLDEN-{name}", base_url=BASE_URL)
    golden = GOLDEN / f"{name}.ks"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()

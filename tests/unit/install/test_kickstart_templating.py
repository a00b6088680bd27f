"""Templates: site copies override bundled files, snippets per role and per node,
undefined variables are errors, bash's ${#...} survives, and the sandbox holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.errors import TemplateError
from provisioner.install.kickstart import render_kickstart
from provisioner.inventory import Site, load_site
from provisioner.inventory.models import Bond, DiskHints, NodeNetwork
from tests.unit.install.kshelpers import BASE_URL, SAMPLE_DISKS, expanded, ksvalidator

BUNDLE = "post-install-bundle.j2"


def site_with_kickstart_dir(site_dir: Path, files: dict[str, str]) -> Site:
    folder = site_dir / "ks-overrides"
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    site_yaml = site_dir / "site.yaml"
    site_yaml.write_text(site_yaml.read_text() + "\ncontent:\n  kickstart: ks-overrides\n")
    return load_site(site_yaml)


def ks(site: Site, name: str) -> str:
    return render_kickstart(site, site.node(name), token="t", base_url=BASE_URL)


def test_snippets_override_per_site_role_and_node(site_dir: Path) -> None:
    site = site_with_kickstart_dir(
        site_dir,
        {
            f"snippets/{BUNDLE}": "echo site-bundle\n",
            f"roles/compute/{BUNDLE}": "echo compute-bundle {{ node.name }}\n",
            f"nodes/cmp2/{BUNDLE}": "echo cmp2-only\n",
        },
    )
    assert "echo site-bundle\n" in ks(site, "ctl1")
    assert "echo compute-bundle cmp1\n" in ks(site, "cmp1")
    cmp2 = ks(site, "cmp2")
    assert "echo cmp2-only\n" in cmp2 and "compute-bundle" not in cmp2
    # files the site did not copy still come from the bundled folder
    assert "%include /tmp/provisioner-storage.ks" in cmp2


def test_site_copy_of_the_main_template_wins(site_dir: Path) -> None:
    site = site_with_kickstart_dir(site_dir, {"default.ks.j2": "# mine {{ node.fqdn }}\n"})
    assert ks(site, "net1") == "# mine net1.lab.example.test\n"


def test_undefined_variable_is_an_error_naming_the_node(site_dir: Path) -> None:
    site = site_with_kickstart_dir(site_dir, {f"snippets/{BUNDLE}": "{{ node.colour }}\n"})
    with pytest.raises(TemplateError, match=r"^node ctl3: template default.ks.j2: .*colour"):
        ks(site, "ctl3")


def test_bash_length_syntax_is_not_a_jinja_comment(site_dir: Path) -> None:
    script = 'DISKS=(a b)\necho "${#DISKS[@]} disks" {# not a comment #}\n'
    site = site_with_kickstart_dir(site_dir, {f"snippets/{BUNDLE}": script})
    assert script in ks(site, "ctl1")


def test_templates_are_sandboxed(site_dir: Path) -> None:
    evil = "{{ ''.__class__.__mro__[1].__subclasses__() }}\n"
    site = site_with_kickstart_dir(site_dir, {f"snippets/{BUNDLE}": evil})
    with pytest.raises(TemplateError, match=r"^node ctl1: template"):
        ks(site, "ctl1")


def test_syntax_error_names_file_and_line(site_dir: Path) -> None:
    site = site_with_kickstart_dir(site_dir, {f"snippets/{BUNDLE}": "ok\n{% if %}\n"})
    with pytest.raises(TemplateError, match=f"^node ctl1: template snippets/{BUNDLE} line 2"):
        ks(site, "ctl1")


def test_bond_and_vlan_network(site: Site, tmp_path: Path) -> None:
    node = site.node("net1").model_copy(
        update={
            "network": NodeNetwork(bond=Bond(interfaces=["ens1f0", "ens1f1"]), vlan=120, mtu=9000)
        }
    )
    text = render_kickstart(site, node, token="t", base_url=BASE_URL)
    assert (
        "network --device=bond0 --bondslaves=ens1f0,ens1f1 --bondopts=mode=802.3ad,miimon=100 "
        "--vlanid=120 --bootproto=static --ip=192.0.2.14 --netmask=255.255.255.0 "
        "--gateway=192.0.2.1 --nameserver=192.0.2.3 --mtu=9000 " in text
    )
    vlan_only = site.node("net2").model_copy(update={"network": NodeNetwork(vlan=7)})
    text2 = render_kickstart(site, vlan_only, token="t", base_url=BASE_URL)
    assert "network --device=52:54:00:00:02:0f --vlanid=7 --bootproto=static" in text2
    files = []
    for i, t in enumerate((text, text2)):
        files.append(tmp_path / f"{i}.ks")
        files[-1].write_text(expanded(t, SAMPLE_DISKS))
    for version in ("RHEL9", "F43"):
        result = ksvalidator(files, version)
        assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("hints", "expected"),
    [
        ({"by_path": "pci-0000:03:00.0-scsi-0:0:0:0"}, "/dev/disk/by-path/pci-0000:03:00.0-scsi"),
        ({"wwn": "0x5000C500A1B2C3D4"}, "-v w=5000c500a1b2c3d4"),
        # quoted for the shell: an inventory value cannot run commands in %pre
        ({"serial": "S3Z9$(reboot)"}, "PROVISIONER_SERIAL='S3Z9$(reboot)' awk"),
        ({"serial": "WD WX41"}, "PROVISIONER_SERIAL='WD\\x20WX41' awk"),
    ],
)
def test_disk_hints_reach_the_pre_script(
    site: Site, tmp_path: Path, hints: dict[str, str], expected: str
) -> None:
    # model_construct: validate refuses '$(' in a serial; the template must still quote
    # a value that slipped past it (a site loaded by other means, an older inventory)
    node = site.node("cmp3").model_copy(update={"disks": DiskHints.model_construct(**hints)})  # type: ignore[arg-type]
    text = render_kickstart(site, node, token="t", base_url=BASE_URL)
    assert expected in text
    assert 'hint serial=S3Z9$(reboot)"' not in text  # not inside double quotes either
    (tmp_path / "x.ks").write_text(text)
    assert ksvalidator([tmp_path / "x.ks"], "RHEL9").returncode == 0


@pytest.fixture
def site(site_dir: Path) -> Site:
    return load_site(site_dir / "site.yaml")

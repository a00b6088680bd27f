"""Which script a MAC gets, rendered from the pxe/ templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.bootserver.bootscript import BootTemplates, decide
from provisioner.errors import BootTemplateError
from provisioner.inventory import load_site

BASE = "http://192.0.2.2:8080"


@pytest.fixture
def site(site_dir: Path):  # type: ignore[no-untyped-def]
    return load_site(site_dir / "site.yaml")


def render(site, mac: str, build_mode: bool, token: str | None) -> str:  # type: ignore[no-untyped-def]
    node = site.node_by_mac(mac)
    decision = decide(site, mac, node, build_mode, token, BASE)
    return BootTemplates().render(decision, site.content_paths().search_path("pxe"))


def test_build_mode_installs_with_kickstart_and_token(site) -> None:  # type: ignore[no-untyped-def]
    script = render(site, "52:54:00:00:02:0b", True, "tok-ctl1")
    assert script.startswith("#!ipxe\n")
    kernel = f"kernel {BASE}/files/rocky9/vmlinuz initrd=initrd.img "
    assert kernel + f"inst.ks={BASE}/ks/ctl1?token=tok-ctl1" in script
    assert f"initrd {BASE}/files/rocky9/initrd.img\n" in script
    assert script.rstrip().endswith("boot")


def test_the_nic_keeps_the_sites_interface_name(site) -> None:  # type: ignore[no-untyped-def]
    """ctl1 says network.interface: enp1s0; dracut's ifname= makes the installed system
    name the NIC of that MAC so (keepalived's VRRP interface must exist there)."""
    script = render(site, "52:54:00:00:02:0b", True, "tok-ctl1")
    assert " ip=dhcp ifname=enp1s0:52:54:00:00:02:0b " in script
    net1 = render(site, "52:54:00:00:02:0e", True, "tok-net1")  # no interface: nothing named
    assert "ifname=" not in net1


def test_not_in_build_mode_exits_to_local_disk(site) -> None:  # type: ignore[no-untyped-def]
    script = render(site, "52:54:00:00:02:0b", False, None)
    assert "exit 1" in script and "kernel" not in script


def test_unknown_mac_never_gets_an_install(site) -> None:  # type: ignore[no-untyped-def]
    script = render(site, "52:54:00:ff:ff:ff", True, "tok-ctl1")
    assert "kernel" not in script and "tok-ctl1" not in script and "exit 1" in script


def test_site_template_overrides_bundled(site_dir: Path) -> None:
    (site_dir / "pxe").mkdir()
    (site_dir / "pxe" / "local.ipxe.j2").write_text("#!ipxe\necho site {{ node.name }}\nexit 1\n")
    path = site_dir / "site.yaml"
    path.write_text(path.read_text() + "content:\n  pxe: pxe\n")
    site = load_site(path)
    assert "echo site ctl1" in render(site, "52:54:00:00:02:0b", False, None)


def test_template_typo_names_node_and_template(site_dir: Path) -> None:
    (site_dir / "pxe").mkdir()
    (site_dir / "pxe" / "local.ipxe.j2").write_text("#!ipxe\necho {{ node.nmae }}\n")
    path = site_dir / "site.yaml"
    path.write_text(path.read_text() + "content:\n  pxe: pxe\n")
    with pytest.raises(BootTemplateError, match=r"node ctl1: pxe/local\.ipxe\.j2"):
        render(load_site(path), "52:54:00:00:02:0b", False, None)


def test_sandbox_refuses_unsafe_templates(site_dir: Path) -> None:
    (site_dir / "pxe").mkdir()
    (site_dir / "pxe" / "local.ipxe.j2").write_text("{{ node.__class__.__mro__ }}\n")
    path = site_dir / "site.yaml"
    path.write_text(path.read_text() + "content:\n  pxe: pxe\n")
    with pytest.raises(BootTemplateError):
        render(load_site(path), "52:54:00:00:02:0b", False, None)


def test_open_site_gives_unknown_macs_the_discovery_script(site_dir: Path) -> None:
    path = site_dir / "site.yaml"
    path.write_text(path.read_text().replace("unknown_macs: ignore", "unknown_macs: discover"))
    script = render(load_site(path), "52:54:00:ff:ff:fe", True, "tok")
    assert "unknown machine 52:54:00:ff:ff:fe" in script
    assert "kernel" not in script and "tok" not in script

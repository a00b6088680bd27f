"""The dnsmasq plan: what each kind of client is told, and dnsmasq accepts it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from provisioner import programs
from provisioner.dhcp.hosts import DhcpPaths, diff_hosts, plan_dhcp
from provisioner.errors import DhcpConfigError
from provisioner.inventory import load_site


def site_with(site_dir: Path, **network: str) -> Path:
    path = site_dir / "site.yaml"
    text = path.read_text()
    for key, value in network.items():
        if key == "unknown_macs":
            text = text.replace("  unknown_macs: ignore\n", f"  unknown_macs: {value}\n")
        else:
            text = text.replace(
                "  unknown_macs: ignore\n", f"  unknown_macs: ignore\n  {key}: {value}\n"
            )
    path.write_text(text)
    return path


def dnsmasq_accepts(conf: str, tmp_path: Path) -> None:
    path = tmp_path / "test.conf"
    path.write_text(conf)
    done = subprocess.run(
        [programs.path("dnsmasq"), "--test", f"--conf-file={path}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr


def test_managed_site(site_dir: Path, tmp_path: Path) -> None:
    site = load_site(site_dir / "site.yaml")
    plan = plan_dhcp(site, DhcpPaths(tmp_path / "dhcp"))
    lines = plan.conf.splitlines()
    assert "port=0" in lines  # DHCP only, never DNS
    assert f"dhcp-hostsdir={tmp_path / 'dhcp' / 'hosts'}" in lines
    assert "dhcp-ignore=tag:!known" in lines  # strict: unknown MACs get nothing
    assert "dhcp-boot=tag:!ipxe,tag:bios,undionly.kpxe,,192.0.2.2" in lines
    assert "dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi,,192.0.2.2" in lines
    assert "dhcp-boot=tag:ipxe,http://192.0.2.2:8080/boot/${netX/mac:hexhyp}.ipxe" in lines
    assert "dhcp-match=set:efi64,option:client-arch,7" in lines
    assert "dhcp-match=set:bios,option:client-arch,0" in lines
    # one host file per node: all its MACs, its fixed address and name
    assert len(plan.hosts) == len(site.nodes)
    assert plan.hosts["ctl1.host"] == "52:54:00:00:02:0b,192.0.2.11,ctl1,12h\n"
    dnsmasq_accepts(plan.conf, tmp_path)


def test_open_site_hands_out_the_pool(site_dir: Path, tmp_path: Path) -> None:
    site = load_site(site_with(site_dir, unknown_macs="discover"))
    conf = plan_dhcp(site, DhcpPaths(tmp_path)).conf
    assert "dhcp-ignore=tag:!known" not in conf
    assert "dhcp-range=set:discovery,192.0.2.200,192.0.2.250,255.255.255.0,1h" in conf
    dnsmasq_accepts(conf, tmp_path)


def test_proxy_site_gives_only_boot_information(site_dir: Path, tmp_path: Path) -> None:
    site = load_site(site_with(site_dir, dhcp_mode="proxy"))
    plan = plan_dhcp(site, DhcpPaths(tmp_path), efi_binary="snponly.efi")
    assert "dhcp-range=192.0.2.0,proxy,255.255.255.0" in plan.conf
    assert 'pxe-service=tag:!ipxe,x86PC,"iPXE (BIOS)",undionly.kpxe,192.0.2.2' in plan.conf
    assert 'pxe-service=tag:!ipxe,BC_EFI,"iPXE (UEFI)",snponly.efi,192.0.2.2' in plan.conf
    assert "dhcp-hostsdir" not in plan.conf and "dhcp-authoritative" not in plan.conf
    assert plan.hosts == {}  # addresses are someone else's
    dnsmasq_accepts(plan.conf, tmp_path)


def test_discover_without_pool_is_a_clear_error(site_dir: Path, tmp_path: Path) -> None:
    path = site_with(site_dir, unknown_macs="discover")
    path.write_text(
        path.read_text().replace("  dhcp_pool: {start: 192.0.2.200, end: 192.0.2.250}\n", "")
    )
    with pytest.raises(DhcpConfigError, match=r"network\.dhcp_pool"):
        plan_dhcp(load_site(path), DhcpPaths(tmp_path))


def test_diff_hosts() -> None:
    diff = diff_hosts({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "9", "d": "4"})
    assert (diff.added, diff.changed, diff.removed) == (["d"], ["b"], ["c"])
    assert diff.needs_reload
    assert not diff_hosts({"a": "1"}, {"a": "1", "b": "2"}).needs_reload  # dnsmasq reads new files

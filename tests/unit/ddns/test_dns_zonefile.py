"""Zone-file export and the records behind it (pure rendering)."""

from __future__ import annotations

from pathlib import Path

from provisioner.ddns.check import expectations
from provisioner.ddns.records import Marker, Owner
from provisioner.ddns.zonefile import render_zone
from provisioner.inventory import load_site


def test_forward_zone_has_soa_ns_nodes_vip_and_aliases(site_dir: Path) -> None:
    site = load_site(site_dir / "site.yaml")
    text = render_zone(site, "forward", 7)
    lines = text.splitlines()
    assert "$ORIGIN lab.example.test." in lines
    assert any(line.startswith("@\tIN\tSOA\tns.lab.example.test. hostmaster.") for line in lines)
    assert "ns.lab.example.test.\t300\tIN\tA\t192.0.2.3" in lines
    assert "cmp3.lab.example.test.\t300\tIN\tA\t192.0.2.20" in lines
    assert "api.lab.example.test.\t300\tIN\tA\t192.0.2.10" in lines
    assert "horizon.lab.example.test.\t300\tIN\tCNAME\tapi.lab.example.test." in lines
    assert "TXT" not in text


def test_reverse_zone_has_a_ptr_per_node_and_vip(site_dir: Path) -> None:
    site = load_site(site_dir / "site.yaml")
    lines = render_zone(site, "reverse", 7).splitlines()
    ptrs = [line for line in lines if "\tPTR\t" in line]
    assert len(ptrs) == 11
    assert "11.2.0.192.in-addr.arpa.\t300\tIN\tPTR\tctl1.lab.example.test." in ptrs


def test_site_copy_of_the_template_takes_precedence(site_dir: Path) -> None:
    (site_dir / "mydns").mkdir()
    (site_dir / "mydns" / "zone.db.j2").write_text("; custom {{ zone }} {{ records|length }}\n")
    text = (site_dir / "site.yaml").read_text() + "\ncontent: {dns: mydns}\n"
    (site_dir / "site.yaml").write_text(text)
    site = load_site(site_dir / "site.yaml")
    assert render_zone(site, "forward", 1) == "; custom lab.example.test. 20\n"


def test_check_expects_forward_and_reverse_for_every_node_and_vip(site_dir: Path) -> None:
    site = load_site(site_dir / "site.yaml")
    wanted = {(e.name, e.rtype): e.expected for e in expectations(site)}
    assert len(wanted) == 30
    assert wanted[("sto2.lab.example.test.", "A")] == "192.0.2.17"
    assert wanted[("17.2.0.192.in-addr.arpa.", "PTR")] == "sto2.lab.example.test."
    assert wanted[("keystone.lab.example.test.", "CNAME")] == "api.lab.example.test."


def test_marker_round_trip() -> None:
    marker = Marker("example", Owner("vip", "api", "controller"))
    assert marker.text == '"provisioner site=example owner=vip/controller/api"'
    assert Marker.parse(marker.text) == marker
    assert Marker.parse('"v=spf1 -all"') is None

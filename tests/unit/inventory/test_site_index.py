"""One MAC normaliser and one index of the site's nodes (by name, MAC and IP)."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from provisioner.errors import InventoryInvalid, UnknownNode
from provisioner.inventory import load_site
from provisioner.inventory.loader import validate_site_file
from provisioner.inventory.macs import nic_mac, normalise_mac


@pytest.mark.parametrize(
    ("raw", "mac"),
    [
        ("52:54:00:00:02:0b", "52:54:00:00:02:0b"),  # site.yaml, dnsmasq logs
        ("52:54:00:00:02:0B", "52:54:00:00:02:0b"),
        ("52-54-00-00-02-0B", "52:54:00:00:02:0b"),  # iPXE's ${netX/mac:hexhyp}
        ("5254.0000.020b", "52:54:00:00:02:0b"),  # a switch's MAC table
        ("52540000020B", "52:54:00:00:02:0b"),  # bare hex
        ("  52:54:00:00:02:0b\n", "52:54:00:00:02:0b"),
        ("52:54-00:00-02:0b", None),  # mixed separators
        ("52:54:00:00:02", None),  # five pairs
        ("52:54:00:00:02:0b:01", None),  # seven pairs
        ("52:54:00:00:02:0g", None),  # not hex
        ("5254000002 0b", None),
        ("52.54.00.00.02.0b", None),
        ("../etc/passwd", None),
        ("", None),
    ],
)
def test_every_spelling_of_a_mac_normalises_to_the_colon_form(raw: str, mac: str | None) -> None:
    assert normalise_mac(raw) == mac


def test_a_nics_mac_is_unicast() -> None:
    assert nic_mac("52-54-00-00-02-0B") == "52:54:00:00:02:0b"
    with pytest.raises(ValueError, match="multicast"):
        nic_mac("01:00:5e:00:00:01")
    with pytest.raises(ValueError, match="not a MAC address"):
        nic_mac("52:54:00:00:02")


def test_site_yaml_macs_are_stored_in_the_colon_form(site_dir: Path) -> None:
    path = site_dir / "site.yaml"
    path.write_text(path.read_text().replace('"52:54:00:00:02:0b"', '"5254.0000.020B"'))
    site = load_site(path)
    assert site.node("ctl1").macs == ["52:54:00:00:02:0b"]


@pytest.mark.parametrize(
    "spelling", ["52:54:00:00:02:0c", "52-54-00-00-02-0C", "5254.0000.020c", "52540000020C"]
)
def test_the_index_finds_a_node_by_any_spelling_of_its_mac(site_dir: Path, spelling: str) -> None:
    site = load_site(site_dir / "site.yaml")
    node = site.node_by_mac(spelling)
    assert node is not None and node.name == "ctl2"


def test_the_index_finds_nodes_by_name_and_ip_and_nothing_else(site_dir: Path) -> None:
    site = load_site(site_dir / "site.yaml")
    assert site.node("cmp1").ip == IPv4Address("192.0.2.18")
    node = site.node_by_ip("192.0.2.18")
    assert node is not None and node.name == "cmp1"
    assert site.node_by_ip(IPv4Address("192.0.2.12")) is site.node("ctl2")
    assert site.node_by_ip("192.0.2.250") is None
    assert site.node_by_ip("not an address") is None
    assert site.node_by_mac("52:54:00:ff:ff:fe") is None
    assert site.node_by_mac("../etc/passwd") is None
    with pytest.raises(UnknownNode, match="nope"):
        site.node("nope")


def test_the_index_is_built_once_per_loaded_site(site_dir: Path) -> None:
    site = load_site(site_dir / "site.yaml")
    assert site.index is site.index
    assert site.node_by_mac("52:54:00:00:02:0b") is site.index.by_name["ctl1"]
    fewer = site.model_copy(update={"nodes": site.nodes[1:]})
    assert fewer.index is not site.index  # a copy with other nodes has its own
    assert fewer.node_by_mac("52:54:00:00:02:0b") is None
    assert site.node_by_mac("52:54:00:00:02:0b") is not None


def test_a_mac_on_two_nodes_is_an_error_naming_both(site_dir: Path) -> None:
    path = site_dir / "site.yaml"
    # ctl2 gets ctl1's MAC, spelt differently: the same NIC all the same
    path.write_text(path.read_text().replace('"52:54:00:00:02:0c"', '"52-54-00-00-02-0B"'))
    _site, problems = validate_site_file(path)
    errors = [(p.where, p.field, p.message) for p in problems if p.severity == "error"]
    assert errors == [("node ctl2", "macs[0]", "duplicate MAC 52:54:00:00:02:0b (also node ctl1)")]
    with pytest.raises(InventoryInvalid):
        load_site(path)


def test_a_mac_listed_twice_on_one_node_is_an_error(site_dir: Path) -> None:
    path = site_dir / "site.yaml"
    path.write_text(
        path.read_text().replace(
            'macs: ["52:54:00:00:02:0b"]', 'macs: ["52:54:00:00:02:0b", "5254.0000.020b"]'
        )
    )
    _site, problems = validate_site_file(path)
    assert [(p.where, p.field, p.message) for p in problems if p.severity == "error"] == [
        ("node ctl1", "macs[1]", "MAC 52:54:00:00:02:0b is listed twice on this node")
    ]

"""Several provisioning networks in site.yaml: each node belongs to exactly one."""

from __future__ import annotations

from pathlib import Path

from provisioner.inventory import Problem
from provisioner.inventory.loader import validate_site_file

RACK2 = """
networks:
  rack2:
    cidr: 192.0.2.128/25
    gateway: 192.0.2.129
    relay: 192.0.2.129
    provisioner: {address: 192.0.2.2, http_port: 8080}
"""


def _validate(site_dir: Path, text: str) -> tuple[object, list[Problem]]:
    (site_dir / "site.yaml").write_text(text)
    return validate_site_file(site_dir / "site.yaml")


def _errors(problems: list[Problem]) -> list[tuple[str, str, str]]:
    return [(p.where, p.field, p.message) for p in problems if p.severity == "error"]


def _two_networks(example_text: str) -> str:
    """The example's /24 split: main keeps the lower half, cmp3 moves to rack2, a relayed
    subnet whose boot server sits on the main network (one reverse zone still holds both)."""
    text = example_text.replace("cidr: 192.0.2.0/24", "cidr: 192.0.2.0/25", 1)
    text = text.replace(
        "{start: 192.0.2.200, end: 192.0.2.250}", "{start: 192.0.2.100, end: 192.0.2.120}"
    )
    text = text.replace("\ndns:\n", RACK2 + "\ndns:\n", 1)
    return text.replace("ip: 192.0.2.20", "ip: 192.0.2.140", 1)


def test_each_node_is_in_the_network_that_holds_its_address(
    site_dir: Path, example_text: str
) -> None:
    site, problems = _validate(site_dir, _two_networks(example_text))
    assert _errors(problems) == []
    assert site is not None
    by_network = {n.name: site.network_name_of(n) for n in site.nodes}  # type: ignore[attr-defined]
    assert by_network["cmp3"] == "rack2"
    assert {v for k, v in by_network.items() if k != "cmp3"} == {"main"}
    assert list(site.provisioning_networks()) == ["main", "rack2"]  # type: ignore[attr-defined]


def test_a_node_in_no_network_or_an_unknown_one_is_reported(
    site_dir: Path, example_text: str
) -> None:
    text = _two_networks(example_text).replace("ip: 192.0.2.140", "ip: 203.0.113.20", 1)
    text = text.replace("    ip: 192.0.2.19\n", "    ip: 192.0.2.19\n    boot_network: rack9\n", 1)
    _site, problems = _validate(site_dir, text)
    errors = _errors(problems)
    assert ("node cmp3", "ip", "203.0.113.20 is in no provisioning network (main, rack2)") in errors
    assert (
        "node cmp2",
        "boot_network",
        "'rack9' is not a provisioning network (one of: main, rack2)",
    ) in errors


def test_a_node_named_into_a_network_must_have_its_address_there(
    site_dir: Path, example_text: str
) -> None:
    text = _two_networks(example_text)
    text = text.replace("    ip: 192.0.2.19\n", "    ip: 192.0.2.19\n    boot_network: rack2\n", 1)
    _site, problems = _validate(site_dir, text)
    assert ("node cmp2", "ip", "192.0.2.19 is outside network rack2's subnet 192.0.2.128/25") in (
        _errors(problems)
    )


def test_overlapping_networks_and_a_relay_outside_its_subnet_are_reported(
    site_dir: Path, example_text: str
) -> None:
    text = _two_networks(example_text).replace("cidr: 192.0.2.128/25", "cidr: 192.0.2.0/24")
    _site, problems = _validate(site_dir, text)
    errors = _errors(problems)
    assert any(
        e[:2] == ("networks.rack2", "cidr") and "overlaps network main (192.0.2.0/25)" in e[2]
        for e in errors
    ), errors
    text = _two_networks(example_text).replace("relay: 192.0.2.129", "relay: 198.51.100.1")
    _site, problems = _validate(site_dir, text)
    assert ("networks.rack2", "relay", "198.51.100.1 is outside 192.0.2.128/25") in _errors(
        problems
    )

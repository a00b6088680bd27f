"""Fields that reach the HA bundles (issue 18), as found by the Hypothesis test over them
(tests/functional/roles/test_hostile_bundles.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.inventory.loader import validate_site_file


def _problems(site_dir: Path, old: str, new: str) -> list[tuple[str, str, str, str]]:
    path = site_dir / "site.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    _site, problems = validate_site_file(path)
    return [(p.severity, p.where, p.field, p.message) for p in problems]


@pytest.mark.parametrize(
    ("old", "new", "where", "field"),
    [
        ("address: 192.0.2.10", "address: true", "role controller", "ha.vips[0].address"),
        ("ip: 192.0.2.11", "ip: 3221226027", "node ctl1", "ip"),
        ("cidr: 192.0.2.0/24", "cidr: 1", "network", "cidr"),
        ("gateway: 192.0.2.1", "gateway: 1.5", "network", "gateway"),
    ],
)
def test_an_address_written_as_a_number_or_boolean_is_refused(
    site_dir: Path, old: str, new: str, where: str, field: str
) -> None:
    """YAML's true was read as 0.0.0.1 and 3221226027 as 192.0.2.43: never what was meant."""
    problems = _problems(site_dir, old, new)
    errors = [(w, f, m) for s, w, f, m in problems if s == "error"]
    assert (where, field) in [(w, f) for w, f, _m in errors], problems
    assert any("expected an address written as text" in m for _w, _f, m in errors)


def test_a_controller_without_an_interface_for_the_vip_is_warned_about(site_dir: Path) -> None:
    problems = _problems(site_dir, "    network: {interface: enp1s0}\n", "")
    assert [(s, w, f) for s, w, f, _m in problems if f == "network.interface"] == [
        ("warning", "node ctl1", "network.interface")
    ]
    message = next(m for _s, _w, f, m in problems if f == "network.interface")
    assert "settings.vrrp_interface" in message


def test_a_role_wide_vrrp_interface_needs_no_node_interface(site_dir: Path) -> None:
    path = site_dir / "site.yaml"
    text = path.read_text().replace("    network: {interface: enp1s0}\n", "")
    path.write_text(
        text.replace(
            "    settings: {glance_store: swift}\n",
            "    settings: {glance_store: swift, vrrp_interface: br-mgmt}\n",
            1,
        )
    )
    _site, problems = validate_site_file(path)
    assert [p for p in problems if p.field == "network.interface"] == []


@pytest.mark.parametrize("name", ["enp1s0:1", "eth0 1", "a/b", ".hidden", "x" * 16])
def test_a_node_interface_is_a_name_the_kernel_takes(site_dir: Path, name: str) -> None:
    """'enp1s0:1' validated, and keepalived was told to use a device that cannot exist."""
    problems = _problems(
        site_dir, "network: {interface: enp1s0}", f"network: {{interface: '{name}'}}"
    )
    assert [(s, w, f) for s, w, f, _m in problems if s == "error"] == [
        ("error", "node ctl1", "network.interface")
    ]

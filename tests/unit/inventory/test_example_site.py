"""The bundled example site is valid and has the shape the docs promise."""

from __future__ import annotations

from pathlib import Path

from provisioner.inventory import load_site, validate_site_file


def test_example_site_validates_without_problems(site_dir: Path) -> None:
    site, problems = validate_site_file(site_dir / "site.yaml")
    assert site is not None
    assert problems == []


def test_example_site_has_the_documented_nodes(site_dir: Path) -> None:
    site = load_site(site_dir / "site.yaml")
    counts = {
        kind: len(site.nodes_of_kind(kind))
        for kind in ("controller", "network", "storage", "compute")
    }
    assert counts == {"controller": 3, "network": 2, "storage": 2, "compute": 3}
    ctl1 = site.node("ctl1")
    assert site.fqdn(ctl1) == "ctl1.lab.example.test"
    assert ctl1.macs == ["52:54:00:00:02:0b"]
    assert site.boot_mode_of(site.node("net2")) == "bios"


def test_secrets_resolve_relative_to_the_site_file(site_dir: Path) -> None:
    site = load_site(site_dir / "site.yaml")
    node = site.node("ctl1")
    secret = node.bmc.password.resolve(site.base_dir, "node ctl1: bmc.password")
    assert secret.get_secret_value() == "lab-only-bmc"
    assert "lab-only-bmc" not in repr(secret)
    assert "lab-only-bmc" not in repr(node)

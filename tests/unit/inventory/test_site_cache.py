"""The validated-site cache (inventory/sitecache.py): used only while nothing it
depends on changed, never hiding a problem, never holding a secret value."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provisioner.errors import InventoryInvalid
from provisioner.inventory import load_site, validate_site_file


def _entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("site-*.pickle"))


def test_a_second_load_comes_from_the_cache_with_the_same_site(
    site_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "state" / "cache"
    first = load_site(site_dir / "site.yaml", cache)
    (entry,) = _entries(cache)
    assert entry.stat().st_mode & 0o777 == 0o600
    second = load_site(site_dir / "site.yaml", cache)
    assert second is not first
    assert second.model_dump() == first.model_dump()
    assert second.base_dir == first.base_dir
    assert second.node_by_mac(first.nodes[0].macs[0]) == first.nodes[0]
    assert _entries(cache) == [entry]  # a hit writes nothing


def test_an_edit_with_an_error_is_reported_with_its_node_field_and_line(
    site_dir: Path, tmp_path: Path, example_text: str
) -> None:
    cache = tmp_path / "cache"
    load_site(site_dir / "site.yaml", cache)
    lines = example_text.splitlines()
    bad = next(i for i, line in enumerate(lines) if "port: 6231" in line)
    lines[bad] = lines[bad].replace("port: 6231", "port: not-a-port")
    (site_dir / "site.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(InventoryInvalid) as raised:
        load_site(site_dir / "site.yaml", cache)
    (problem,) = [p for p in raised.value.problems if p.severity == "error"]
    assert problem.where.startswith("node ") and "bmc.port" in problem.field
    assert problem.line == bad + 1
    assert len(_entries(cache)) == 1  # a site with errors is never cached


def test_a_secret_file_changed_after_caching_is_checked_again(
    site_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    _, before = validate_site_file(site_dir / "site.yaml", cache)
    assert not any("bmc.password" in p.field for p in before)
    os.chmod(site_dir / "secrets" / "bmc-password", 0o644)
    _, after = validate_site_file(site_dir / "site.yaml", cache)
    assert any("bmc.password" in p.field and "chmod 600" in p.message for p in after)


def test_the_cache_holds_no_secret_value(site_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    site = load_site(site_dir / "site.yaml", cache)
    # validation resolved these (it checks the TSIG key and the crypt hash)
    for ref, owner in ((site.dns.tsig.secret, "tsig"), (site.defaults.root_password_hash, "r")):
        value = site.secret(ref, owner).get_secret_value()
        for entry in _entries(cache):
            assert value.encode() not in entry.read_bytes()
    again = load_site(site_dir / "site.yaml", cache)
    assert again.secret(site.dns.tsig.secret, "tsig").get_secret_value()  # still resolvable


def test_a_cache_file_others_can_write_is_not_loaded(site_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_site(site_dir / "site.yaml", cache)
    (entry,) = _entries(cache)
    entry.write_bytes(b"not a pickle")
    os.chmod(entry, 0o666)
    site = load_site(site_dir / "site.yaml", cache)  # validated again, entry replaced
    assert site.nodes
    assert _entries(cache)[0].stat().st_mode & 0o777 == 0o600

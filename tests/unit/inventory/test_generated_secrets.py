"""Secrets a site asks to be generated: fine before they exist, made once, mode 0600."""

from __future__ import annotations

import base64
import shutil
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import ValidationError

from provisioner.inventory import load_site
from provisioner.inventory.loader import validate_site_file
from provisioner.inventory.secrets import SecretRef
from provisioner.state.keys import create_generated

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def fresh_clone(tmp_path: Path) -> Path:
    """The example site as git checks it out: site.yaml and the secrets README, mode 0644."""
    shutil.copy(REPO / "examples" / "site.yaml", tmp_path / "site.yaml")
    (tmp_path / "secrets").mkdir()
    shutil.copy(REPO / "examples" / "secrets" / "README.md", tmp_path / "secrets" / "README.md")
    for path in (tmp_path / "site.yaml", tmp_path / "secrets" / "README.md"):
        path.chmod(0o644)
    return tmp_path


def test_validate_of_a_fresh_clone_has_no_problem_and_writes_nothing(fresh_clone: Path) -> None:
    site, problems = validate_site_file(fresh_clone / "site.yaml")
    assert site is not None
    assert problems == []
    assert [p.name for p in (fresh_clone / "secrets").iterdir()] == ["README.md"]


def test_first_use_makes_each_secret_once_mode_0600(fresh_clone: Path) -> None:
    site = load_site(fresh_clone / "site.yaml")
    bmc = site.node("ctl1").bmc.password.resolve(site.base_dir, "node ctl1: bmc.password")
    tsig = site.dns.tsig.secret.resolve(site.base_dir, "dns: tsig.secret")
    root = site.defaults.root_password_hash.resolve(site.base_dir, "defaults")
    assert len(bmc.get_secret_value()) == 20
    assert len(base64.b64decode(tsig.get_secret_value(), validate=True)) == 32
    assert root.get_secret_value().startswith("$6$")
    files = sorted(p for p in (fresh_clone / "secrets").iterdir() if p.name != "README.md")
    assert [p.name for p in files] == ["bmc-password", "root-password.hash", "tsig.secret"]
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}
    again = site.node("ctl2").bmc.password.resolve(site.base_dir, "node ctl2: bmc.password")
    assert again.get_secret_value() == bmc.get_secret_value()  # the same file, kept
    _site, problems = validate_site_file(fresh_clone / "site.yaml")
    assert problems == []


def test_a_generated_secret_readable_by_others_is_still_warned_about(fresh_clone: Path) -> None:
    site = load_site(fresh_clone / "site.yaml")
    site.dns.tsig.secret.resolve(site.base_dir, "dns: tsig.secret")
    (fresh_clone / "secrets" / "tsig.secret").chmod(0o644)
    _site, problems = validate_site_file(fresh_clone / "site.yaml")
    assert [(p.where, p.field, p.severity) for p in problems] == [("dns", "tsig.secret", "warning")]
    assert "readable by group or others (chmod 600)" in problems[0].message


def test_an_existing_file_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "bmc-password"
    path.write_text("operator-set\n")
    ref = SecretRef(file="bmc-password", generate="password")
    assert ref.resolve(tmp_path, "t").get_secret_value() == "operator-set"


def test_generate_needs_a_file_to_keep_the_secret_in() -> None:
    with pytest.raises(ValidationError, match="'generate' needs 'file'"):
        SecretRef(env="X", generate="password")
    with pytest.raises(ValidationError):
        SecretRef(file="x", generate="ssh-key")  # type: ignore[arg-type]


def test_processes_racing_to_generate_get_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "tsig.secret"
    with ThreadPoolExecutor(max_workers=8) as pool:
        values = set(pool.map(lambda _: create_generated(path, "tsig"), range(32)))
    assert values == {path.read_text().strip()}
    assert not [p for p in path.parent.iterdir() if p != path]  # no temporary left behind

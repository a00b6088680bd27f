"""`provisioner render kickstart|preseed NODE` as an operator runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from provisioner.errors import EXIT_CONFIG, EXIT_NOT_FOUND
from provisioner.install.kickstart import TOKEN_PLACEHOLDER
from provisioner.state.store import Store
from provisioner.state.tokens import DeployTokens
from tests.unit.install.kshelpers import ksvalidator


def run(site_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "provisioner", "--site", str(site_dir / "site.yaml")]
    cmd += ["--state-dir", str(site_dir / "state"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_render_without_build_mode_uses_a_visible_placeholder(site_dir: Path) -> None:
    result = run(site_dir, "render", "kickstart", "ctl1")
    assert result.returncode == 0, result.stderr
    assert f"PROVISIONER_TOKEN={TOKEN_PLACEHOLDER}\n" in result.stdout
    assert "node ctl1 is not in build mode" in result.stderr
    assert not (site_dir / "state").exists()  # rendering creates no state
    out = site_dir / "ctl1.ks"
    out.write_text(result.stdout)
    assert ksvalidator([out], "RHEL9").returncode == 0


def test_render_in_build_mode_carries_the_nodes_token(site_dir: Path) -> None:
    state = site_dir / "state"
    store = Store.open(state)
    store.enroll("cmp2")
    store.start_build_mode("cmp2")
    token = DeployTokens.from_state_dir(state).token_for(store.get("cmp2"))
    store.close()
    assert token
    result = run(site_dir, "render", "kickstart", "cmp2")
    assert result.returncode == 0, result.stderr
    assert f"PROVISIONER_TOKEN={token}\n" in result.stdout
    assert "build mode" not in result.stderr
    other = run(site_dir, "render", "kickstart", "cmp3")  # not in build mode
    assert token not in other.stdout and TOKEN_PLACEHOLDER in other.stdout


def test_render_with_known_disks_prints_storage_inline(site_dir: Path) -> None:
    result = run(site_dir, "render", "kickstart", "ctl2", "--disks", "nvme0n1,nvme1n1")
    assert result.returncode == 0, result.stderr
    assert "ignoredisk --only-use=nvme0n1,nvme1n1\n" in result.stdout
    assert "%include" not in result.stdout


def test_render_preseed(site_dir: Path) -> None:
    result = run(site_dir, "render", "preseed", "sto1")
    assert result.returncode == 0, result.stderr
    assert "d-i partman-auto/method string lvm\n" in result.stdout
    assert "d-i netcfg/get_ipaddress string 192.0.2.16\n" in result.stdout


def test_render_errors_are_one_clean_line(site_dir: Path) -> None:
    result = run(site_dir, "render", "kickstart", "nope")
    assert result.returncode == EXIT_NOT_FOUND
    assert result.stderr.strip().endswith("error: node nope: not in the inventory")
    site_yaml = site_dir / "site.yaml"
    site_yaml.write_text(site_yaml.read_text().replace("min_size_gb: 20}", "min_size_gb: 5}"))
    result = run(site_dir, "render", "kickstart", "ctl1")
    assert result.returncode == EXIT_CONFIG and "Traceback" not in result.stderr
    assert "error: node ctl1: layout 'controller': needs 16010 MiB on each OS disk" in result.stderr

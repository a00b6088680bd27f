"""The `provisioner` command as a user runs it: exit codes, messages, JSON, no secrets."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner import programs
from provisioner.errors import EXIT_CONFIG, EXIT_NOT_FOUND
from provisioner.inventory.schema import site_schema_text

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, site_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "provisioner",
        "--site",
        str(site_dir / "site.yaml"),
        "--state-dir",
        str(site_dir / "state"),
        *args,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} exited {result.returncode}: {result.stderr}")
    return result


def test_validate_good_site_exits_zero(site_dir: Path) -> None:
    result = run("validate", site_dir=site_dir)
    assert "OK: site example, 10 nodes (3 controller, 2 network, 2 storage, 3 compute)" in (
        result.stdout
    )


def test_validate_bad_site_lists_every_problem_and_exits_non_zero(site_dir: Path) -> None:
    text = (site_dir / "site.yaml").read_text()
    text = text.replace("ip: 192.0.2.20", "ip: 192.0.2.18").replace("role: storage", "role: x", 1)
    (site_dir / "site.yaml").write_text(text)
    result = run("validate", site_dir=site_dir, check=False)
    assert result.returncode == EXIT_CONFIG
    assert "error: node cmp3: ip: duplicate IP 192.0.2.18 (also node cmp1)" in result.stdout
    assert "error: node sto1: role: unknown role 'x'" in result.stdout
    assert "Traceback" not in result.stderr

    as_json = json.loads(run("validate", "--json", site_dir=site_dir, check=False).stdout)
    assert as_json["valid"] is False
    assert {(p["where"], p["field"]) for p in as_json["problems"]} >= {
        ("node cmp3", "ip"),
        ("node sto1", "role"),
    }


def test_malformed_yaml_gets_line_and_column(site_dir: Path) -> None:
    (site_dir / "site.yaml").write_text("site:\n  name: x\n  domain: [oops\n")
    result = run("validate", site_dir=site_dir, check=False)
    assert result.returncode == EXIT_CONFIG
    assert "site.yaml:4:1: malformed YAML" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_site_file_is_a_clean_error(tmp_path: Path) -> None:
    result = run("nodes", site_dir=tmp_path, check=False)
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.startswith("error: ")
    assert "cannot read" in result.stderr


def test_nodes_status_and_events_show_state_without_secrets(site_dir: Path) -> None:
    run("enroll", "--all", site_dir=site_dir)
    nodes = json.loads(run("nodes", "--json", site_dir=site_dir).stdout)
    assert len(nodes) == 10
    assert {n["state"] for n in nodes} == {"enrolled"}
    ctl1 = next(n for n in nodes if n["name"] == "ctl1")
    assert ctl1["bmc"] == {"driver": "ipmi", "address": "127.0.0.1", "port": 6230, "user": "admin"}

    status = json.loads(run("status", "ctl1", "--json", site_dir=site_dir).stdout)
    assert status["state"]["state"] == "enrolled"
    assert status["events"][0]["message"] == "enrolled from site.yaml"

    human = (
        run("status", "ctl1", site_dir=site_dir).stdout
        + run("nodes", site_dir=site_dir).stdout
        + run("events", "ctl1", site_dir=site_dir).stdout
    )
    assert "ctl1" in human and "enrolled" in human
    secrets = [p.read_text().strip() for p in (site_dir / "secrets").iterdir() if p.suffix != ".md"]
    for secret in secrets:
        for output in (human, json.dumps(status), json.dumps(nodes)):
            assert secret not in output


def test_status_of_unknown_node_is_a_clean_error(site_dir: Path) -> None:
    result = run("status", "ctl9", site_dir=site_dir, check=False)
    assert result.returncode == EXIT_NOT_FOUND
    assert result.stderr.strip() == "error: node ctl9: not in the inventory"


def test_reserved_node_can_be_released_by_the_operator(site_dir: Path) -> None:
    run("enroll", "ctl1", site_dir=site_dir)
    from provisioner.state.store import Store

    store = Store.open(site_dir / "state")
    store.reserve("ctl1", "provision", owner="stuck-daemon")
    assert "reserved by stuck-daemon" in run("status", "ctl1", site_dir=site_dir).stdout
    run("release", "ctl1", "--yes", site_dir=site_dir)
    assert store.reservation("ctl1") is None


def test_published_schema_is_current_and_accepts_the_example(site_dir: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    committed = (REPO / "schema" / "site.schema.json").read_text()
    assert committed == site_schema_text(), "run: provisioner schema > schema/site.schema.json"
    from provisioner.inventory.yamlload import load_yaml_file

    jsonschema.validate(load_yaml_file(site_dir / "site.yaml"), json.loads(committed))


def test_python_dash_m_and_console_script_agree(site_dir: Path) -> None:
    result = run("--version", site_dir=site_dir)
    assert result.stdout.startswith("provisioner, version ")


def provisioner(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command exactly as typed: no options added in front."""
    cmd = [sys.executable, "-m", "provisioner", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


def test_global_options_are_accepted_after_the_subcommand(site_dir: Path) -> None:
    site, state = str(site_dir / "site.yaml"), str(site_dir / "state")
    done = provisioner("enroll", "--all", "--site", site, "--state-dir", state)
    assert done.returncode == 0, done.stderr
    nodes = provisioner("nodes", "--json", "--site", site, "--state-dir", state)
    assert nodes.returncode == 0, nodes.stderr
    assert {n["state"] for n in json.loads(nodes.stdout)} == {"enrolled"}  # the same store
    # nested groups too, and the same option after the command wins over the one before
    ks = provisioner("--site", "/nonexistent.yaml", "render", "kickstart", "ctl1", "--site", site,
                     "--state-dir", state)  # fmt: skip
    assert ks.returncode == 0, ks.stderr
    assert "network --hostname=ctl1.lab.example.test" in ks.stdout
    status = provisioner("--site", "/nonexistent.yaml", "status", "ctl1", "--site", site,
                         "--state-dir", state, "--json")  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["state"]["state"] == "enrolled"
    db = f"sqlite:///{site_dir / 'other.db'}"
    other = provisioner("nodes", "--site", site, "--state-dir", state, "--db-url", db, "--json")
    assert other.returncode == 0, other.stderr
    assert (site_dir / "other.db").exists()
    assert {n["state"] for n in json.loads(other.stdout)} == {None}  # not enrolled there


def test_an_option_after_the_command_applies_only_when_given(site_dir: Path) -> None:
    env = {**os.environ, "PROVISIONER_SITE": str(site_dir / "site.yaml")}
    env["PROVISIONER_STATE_DIR"] = str(site_dir / "state")
    done = provisioner("validate", "-v", env=env)  # the environment still counts
    assert done.returncode == 0, done.stderr
    assert "OK: site example" in done.stdout
    missing = provisioner("validate", "--site", str(site_dir / "nope.yaml"), env=env)
    assert missing.returncode == EXIT_CONFIG and "nope.yaml" in missing.stderr + missing.stdout


def test_lab_down_without_a_lab_is_not_an_error(tmp_path: Path) -> None:
    done = provisioner("lab", "down", "--state-dir", str(tmp_path / "fresh"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no lab running"
    assert done.stderr == ""


def test_the_example_site_on_a_fresh_clone_validates_without_a_warning(tmp_path: Path) -> None:
    """Its secrets are generated on first use (mode 0600), not checked out of git (0644)."""
    tracked = subprocess.run(
        [programs.path("git"), "-C", str(REPO), "ls-files", "examples"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()  # what a clone has (not secrets generated in this checkout)
    for name in tracked:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, tmp_path / name)  # mode 0644, as git checks it out
    site = str(tmp_path / "examples" / "site.yaml")
    secrets = tmp_path / "examples" / "secrets"
    assert [p.name for p in secrets.iterdir()] == ["README.md"]
    done = provisioner("--site", site, "validate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{site}: OK: site example, 10 nodes (3 controller, 2 network, 2 storage, 3 compute)"
    ]
    assert done.stderr == ""
    ks = provisioner("--site", site, "--state-dir", str(tmp_path / "state"), "render", "kickstart",
                     "ctl1")  # fmt: skip
    assert ks.returncode == 0, ks.stderr
    made = secrets / "root-password.hash"
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert f"rootpw --iscrypted {made.read_text().strip()}\n" in ks.stdout
    again = provisioner("--site", site, "validate", "--strict")
    assert again.returncode == 0 and "warning" not in again.stdout + again.stderr

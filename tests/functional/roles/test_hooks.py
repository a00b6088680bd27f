"""The hook runner with real executables, run by the pipeline as the daemon does,
and `provisioner hooks ...` as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from provisioner import programs
from provisioner.errors import EXIT_CONFLICT
from provisioner.inventory import load_site
from provisioner.pipeline.hooks import HookRunner
from provisioner.pipeline.runner import Pipeline
from provisioner.pipeline.site_backends import SiteBackends
from provisioner.roles.bundles import BundleStore
from provisioner.state.machine import EventKind, NodeState
from provisioner.state.store import NodeRecord, Store
from tests.functional.roles.conftest import edit_site, walk

pytestmark = pytest.mark.functional


def cli(site_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "provisioner", "--site", str(site_dir / "site.yaml")]
    cmd += ["--state-dir", str(site_dir / "state"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def ansible_inventory() -> str:
    """ansible-core's reader, from this interpreter's environment."""
    return programs.path("ansible-inventory")


def add_hook(site_dir: Path, rel: str, body: str) -> Path:
    """A hook in the site's own hooks folder (content.hooks), which takes precedence."""

    def point(data: dict[str, Any]) -> None:
        data["content"] = {"hooks": "site-hooks"}

    edit_site(site_dir, point)
    path = site_dir / "site-hooks" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(0o755)
    return path


def runner(site_dir: Path, store: Store, timeout: float = 120) -> HookRunner:
    state_dir = site_dir / "state"
    site = load_site(site_dir / "site.yaml")
    return HookRunner(lambda: site, store, state_dir, site_dir / "site.yaml", timeout_s=timeout)


def configure(site_dir: Path, store: Store, name: str, timeout: float = 120) -> NodeRecord:
    """What the daemon does with a node left configuring: run its hooks (from the
    recorded one), then activate it or fail it at the hook."""
    hooks = runner(site_dir, store, timeout)
    pipeline = Pipeline(store, hooks.site, SiteBackends(site_dir / "state"), hooks=hooks)
    return pipeline.resume(name)


def hook_events(store: Store, node: str) -> list[str]:
    return [e.message for e in store.events(node) if e.kind is EventKind.HOOK]


@pytest.fixture
def state(site_dir: Path) -> Store:
    return Store.open(site_dir / "state")


def test_failing_hook_stops_the_chain_and_rerun_resumes_from_it(
    site_dir: Path, state: Store
) -> None:
    add_hook(
        site_dir,
        "controller/30-wait-for-storage",
        '#!/bin/sh\necho "checking shared storage for $PROVISIONER_NODE"\n'
        '[ -e "$PROVISIONER_STATE_DIR/storage-ready" ] && exit 0\n'
        'echo "storage not ready" >&2\nexit 3\n',
    )
    walk(state, "ctl1", NodeState.CONFIGURING)
    record = configure(site_dir, state, "ctl1")

    assert record.step == "hook:controller/30-wait-for-storage"
    assert record.state == NodeState.CONFIGURING_FAILED
    assert record.reason == "hook controller/30-wait-for-storage failed with exit code 3"
    assert "storage not ready" in hook_events(state, "ctl1")[-1]
    bundles = BundleStore(site_dir / "state")
    assert not bundles.exists("ctl1")  # the hooks after the failed one did not run

    listed = cli(site_dir, "hooks", "list", "ctl1", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(h["name"], h["failed"]) for h in json.loads(listed.stdout)] == [
        ("common/10-record-context", False),
        ("controller/30-wait-for-storage", True),
        ("controller/50-ha-bundle", False),
    ]

    again = cli(site_dir, "hooks", "rerun", "ctl1")
    assert again.returncode == 1
    assert "node ctl1: hook controller/30-wait-for-storage failed with exit code 3" in again.stderr
    assert state.get("ctl1").state == NodeState.CONFIGURING_FAILED

    (site_dir / "state" / "storage-ready").touch()
    fixed = cli(site_dir, "hooks", "rerun", "ctl1")
    assert fixed.returncode == 0, fixed.stderr
    assert "ctl1: active" in fixed.stdout
    assert state.get("ctl1").state == NodeState.ACTIVE
    assert bundles.exists("ctl1")
    firsts = [m.split("\n")[0] for m in hook_events(state, "ctl1") if m.startswith("hook ")]
    assert firsts.count("hook common/10-record-context exited 0") == 1  # not run again
    assert firsts.count("hook controller/30-wait-for-storage exited 3") == 2


def test_a_hung_hook_is_killed_at_its_timeout(site_dir: Path, state: Store) -> None:
    add_hook(
        site_dir,
        "common/05-hang",
        '#!/bin/sh\necho $$ > "$PROVISIONER_STATE_DIR/hang.pid"\nexec sleep 300\n',
    )
    walk(state, "cmp1", NodeState.CONFIGURING)
    started = time.monotonic()
    record = configure(site_dir, state, "cmp1", timeout=2)
    assert time.monotonic() - started < 60
    assert record.state == NodeState.CONFIGURING_FAILED
    assert record.reason == "hook common/05-hang timed out after 2s"
    pid = int((site_dir / "state" / "hang.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_hooks_get_the_context_on_stdin_and_in_the_environment(
    site_dir: Path, state: Store
) -> None:
    add_hook(
        site_dir,
        "common/20-capture",
        '#!/bin/sh\ncat > "$PROVISIONER_STATE_DIR/$PROVISIONER_NODE.json"\n'
        'env | grep ^PROVISIONER_ | sort > "$PROVISIONER_STATE_DIR/$PROVISIONER_NODE.env"\n',
    )
    walk(state, "ctl1", NodeState.ACTIVE)
    walk(state, "ctl2", NodeState.CONFIGURING)
    assert runner(site_dir, state).run("ctl2").ok
    assert state.get("ctl2").state == NodeState.CONFIGURING  # the runner moves no node
    context = json.loads((site_dir / "state" / "ctl2.json").read_text())
    assert context["node"] == "ctl2" and context["role"] == "controller"
    assert context["addresses"]["ip"] == "192.0.2.12"
    assert [(m["name"], m["ip"], m["state"]) for m in context["members"]] == [
        ("ctl1", "192.0.2.11", "active"),
        ("ctl3", "192.0.2.13", None),
    ]
    assert context["vips"] == [{"name": "api", "address": "192.0.2.10", "role": "controller"}]
    assert context["first_deployment"] is True and context["reprovision"] is False
    env = dict(
        line.split("=", 1) for line in (site_dir / "state" / "ctl2.env").read_text().splitlines()
    )
    assert env["PROVISIONER_NODE"] == "ctl2"
    assert env["PROVISIONER_MEMBERS"] == "ctl1 ctl3"
    assert env["PROVISIONER_VIPS"] == "192.0.2.10"
    assert env["PROVISIONER_FIRST_DEPLOYMENT"] == "1"
    # the cluster runs on ctl1 already, so ctl2 joins it even on its first deployment
    decision = json.loads(
        (BundleStore(site_dir / "state").path("ctl2") / "galera/decision.json").read_text()
    )
    assert decision["bootstrap"] is False


def test_reprovisioned_controller_joins_galera_never_bootstraps(
    site_dir: Path, state: Store
) -> None:
    for name in ("ctl1", "ctl2", "ctl3"):
        walk(state, name, NodeState.ACTIVE)
    # ctl1, which bootstrapped the cluster, fails and is reprovisioned
    for event in ("reprovision", "boot", "install", "installed", "configure"):
        state.transition("ctl1", event, actor="test")
    assert configure(site_dir, state, "ctl1").state == NodeState.ACTIVE
    bundle = BundleStore(site_dir / "state").path("ctl1")
    context = json.loads((site_dir / "state" / "nodes" / "ctl1" / "context.json").read_text())
    assert context["reprovision"] is True and context["first_deployment"] is False
    start = (bundle / "galera" / "galera-start.sh").read_text()
    assert "exec systemctl start mariadb" in start
    assert "galera_new_cluster" not in start
    cnf = (bundle / "mysql" / "galera.cnf").read_text()
    assert "wsrep_cluster_address = gcomm://192.0.2.11,192.0.2.12,192.0.2.13" in cnf


def test_first_deployment_of_the_cluster_bootstraps_on_one_controller(
    site_dir: Path, state: Store
) -> None:
    for name in ("ctl1", "ctl2", "ctl3"):
        walk(state, name, NodeState.CONFIGURING)
    for name in ("ctl1", "ctl2", "ctl3"):  # all three installed at about the same time
        assert configure(site_dir, state, name).state == NodeState.ACTIVE
    bundles = BundleStore(site_dir / "state")
    starts = {
        n: (bundles.path(n) / "galera" / "galera-start.sh").read_text()
        for n in ("ctl1", "ctl2", "ctl3")
    }
    assert [n for n, s in starts.items() if "exec galera_new_cluster" in s] == ["ctl1"]


def test_bundle_and_ansible_inventory_commands(site_dir: Path, state: Store) -> None:
    state.enroll("sto1")
    shown = cli(site_dir, "bundle", "sto1", "--render")
    assert shown.returncode == 0, shown.stderr
    assert str(site_dir / "state" / "bundles" / "sto1") in shown.stdout
    assert "cinder/cinder.conf" in shown.stdout
    inv = cli(site_dir, "inventory", "ansible", "-o", str(site_dir / "multinode"))
    assert inv.returncode == 0, inv.stderr
    graph = subprocess.run(
        [ansible_inventory(), "-i", str(site_dir / "multinode"), "--list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert graph.returncode == 0, graph.stderr
    groups = json.loads(graph.stdout)
    assert groups["control"]["hosts"] == ["ctl1", "ctl2", "ctl3"]
    assert groups["storage"]["hosts"] == ["sto1", "sto2"]
    assert "compute" in groups["nova-compute"]["children"]
    host = groups["_meta"]["hostvars"]["cmp1"]
    assert host["ansible_host"] == "192.0.2.18"
    assert host["kolla_internal_vip_address"] == "192.0.2.10"


def test_a_node_left_configuring_resumes_at_its_recorded_hook(site_dir: Path, state: Store) -> None:
    """The daemon died while ctl1's second hook ran: the next one resumes there."""
    walk(state, "ctl1", NodeState.CONFIGURING)
    state.set_step("ctl1", "hook:controller/50-ha-bundle")
    plain = cli(site_dir, "hooks", "rerun", "ctl1")  # not failed: nothing to retry
    assert plain.returncode == EXIT_CONFLICT and "needs 'configuring failed'" in plain.stderr
    assert state.get("ctl1").state == NodeState.CONFIGURING

    record = configure(site_dir, state, "ctl1")
    assert record.state == NodeState.ACTIVE, record.reason
    assert record.step is None
    firsts = [m.split("\n")[0] for m in hook_events(state, "ctl1")]
    assert firsts == ["hook controller/50-ha-bundle done in-process"]  # resumed where it stopped
    notes = [e.message for e in state.events("ctl1") if e.kind is EventKind.NOTE]
    assert "resuming at hook controller/50-ha-bundle" in notes

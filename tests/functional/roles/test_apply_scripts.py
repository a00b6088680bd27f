"""The bundle's own apply scripts, run for real by sh: what they print is a report the
boot server accepts (provisioner/bootserver/apply_report.py), on success and on failure.

The controller's service steps need the node's systemd and cluster (the lab e2e test runs
them); here the shared library and a role's file step run against a scratch root."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from provisioner import programs
from provisioner.bootserver import apply_report
from provisioner.inventory import Site
from provisioner.roles import DeployFacts, generate
from provisioner.roles.bundles import BundleStore

pytestmark = pytest.mark.functional


def _apply(bundle: Path, root: Path, script: str = "apply/apply.sh") -> tuple[int, str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PROVISIONER_APPLY_ROOT": str(root),
        "PROVISIONER_APPLY_LOG": str(root / "apply.log"),
    }
    done = subprocess.run(
        [programs.path("sh"), str(bundle / script)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    log = (root / "apply.log").read_text() if (root / "apply.log").exists() else ""
    return done.returncode, done.stdout, log


def test_a_compute_bundle_installs_its_files_and_reports_applied(
    lab_site: Site, tmp_path: Path
) -> None:
    node = next(n for n in lab_site.nodes if lab_site.role_kind(n.role) == "compute")
    files = generate(lab_site, node.name, DeployFacts())
    bundle = BundleStore(tmp_path / "state").write(node.name, files)
    root = tmp_path / "root"
    code, out, log = _apply(bundle, root)

    assert code == 0, log
    report = apply_report.parse(node.name, json.loads(out))
    assert report.status == "applied"
    assert [s.name for s in report.services] == ["files"]
    assert (root / "etc/nova/nova-compute.conf").read_text() == files["nova/nova-compute.conf"]
    assert not (root / "etc/apply").exists()  # the scripts themselves stay in the bundle
    installed = sorted(p for p in (root / "etc").rglob("*") if p.is_file())
    assert report.services[0].detail == f"{len(installed)} files in /etc"


def test_a_failing_step_reports_the_service_and_the_end_of_its_log(
    lab_site: Site, tmp_path: Path
) -> None:
    node = next(n for n in lab_site.nodes if lab_site.role_kind(n.role) == "controller")
    bundle = BundleStore(tmp_path / "state").write(
        node.name, generate(lab_site, node.name, DeployFacts())
    )
    # what a service step does when its daemon will not start: output, then a failure
    (bundle / "apply/try.sh").write_text(
        '. "$(dirname "$0")/lib.sh"\n'
        "ok_step() { echo 'all \"good\" \\\\ here'; }\n"
        "bad_step() {\n"
        "  printf 'Job for rabbitmq-server.service failed.\\n\\tsee \"journalctl\"\\n'\n"
        "  printf '\\001\\033[31mcontrol\\n'\n"
        "  false\n"
        "  echo never\n"
        "}\n"
        "run files ok_step\nrun rabbitmq bad_step\nrun haproxy ok_step\nreport applied\n"
    )
    root = tmp_path / "root"
    root.mkdir()
    code, out, log = _apply(bundle, root, "apply/try.sh")

    assert code == 1
    report = apply_report.parse(node.name, json.loads(out))
    assert report.status == "apply-failed" and report.failed_service == "rabbitmq"
    assert [(s.name, s.result) for s in report.services] == [
        ("files", "ok"),
        ("rabbitmq", "failed"),
    ]
    assert report.services[0].detail == 'all "good" \\ here'
    assert "never" not in out and "haproxy" not in out  # stopped at the failure
    assert report.log.startswith('Job for rabbitmq-server.service failed.| see "journalctl"|')
    assert "\x1b" not in report.log and "\x01" not in report.log
    assert "== rabbitmq: failed" in log


def test_every_role_bundle_has_its_apply_script_and_only_controllers_a_cluster_key(
    lab_site: Site,
) -> None:
    for node in lab_site.nodes:
        files = generate(lab_site, node.name, DeployFacts())
        for script in ("apply/lib.sh", "apply/apply.sh"):
            check = subprocess.run(
                [programs.path("sh"), "-n"], input=files[script], capture_output=True, text=True
            )
            assert check.returncode == 0, (node.name, script, check.stderr)
        secrets = {p for p in files if p.startswith("secrets/")}
        if lab_site.role_kind(node.role) == "controller":
            assert "secrets/cluster.env" in secrets
            order = [ln.split()[1] for ln in files["apply/apply.sh"].splitlines()
                     if ln.startswith("run ")]  # fmt: skip
            assert order == [
                "files",
                "galera",
                "rabbitmq",
                "keepalived",
                "haproxy",
                "memcached",
                "pacemaker",
                "keystone",
            ]
        else:
            assert "secrets/cluster.env" not in secrets


def test_only_a_reprovisioned_controller_has_its_old_rabbitmq_self_forgotten(
    lab_site: Site,
) -> None:
    """On a first deployment nobody knows the joining node yet (asking each peer to
    forget it only fails, a minute each under TCG); a reinstalled member is still listed
    by the others, which forget it before it joins again."""
    first = generate(lab_site, "ctl2", DeployFacts())["apply/apply.sh"]
    again = generate(lab_site, "ctl2", DeployFacts(False, ("ctl1", "ctl3")))["apply/apply.sh"]
    assert "forget_cluster_node" not in first
    forgets = [ln.split() for ln in again.splitlines() if "forget_cluster_node" in ln]
    assert [(f[f.index("-n") + 1], f[-3]) for f in forgets] == [
        ("rabbit@ctl1", "rabbit@ctl2"),
        ("rabbit@ctl3", "rabbit@ctl2"),
    ]

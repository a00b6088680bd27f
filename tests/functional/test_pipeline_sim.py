"""Provision and reprovision through the whole pipeline with real servers.

Real BIND (RFC 2136), real `provisioner serve` (TFTP + HTTP + kickstart +
callbacks + hooks), virtual IPMI BMCs; the nodes' firmware and installer are
simulated but fetch over TFTP/HTTP and call back like the real ones.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from provisioner.errors import EXIT_CONFLICT, EXIT_PARTIAL
from tests.functional.pipeline_lab import ALL_GOOD, SimLab, results_by_node, sim_lab


def test_provision_then_reprovision_with_failures_and_quorum_guard(tmp_path: Path) -> None:
    with sim_lab(tmp_path) as lab:
        run = lab.cli("provision", "--all", "--json", timeout=600)
        results = results_by_node(run.stdout)
        assert run.returncode == EXIT_PARTIAL, run.stderr  # some nodes failed, on purpose
        for name in ("ctl1", "ctl2", "cmp1"):
            assert results[name]["state"] == "active", results[name]
        # a node that never calls back fails at that step, after its timeout
        assert results["ctl3"]["state"] == "installing failed"
        assert "wait for installed callback" in str(results["ctl3"]["reason"])
        assert "never called back" in str(results["ctl3"]["reason"])
        # a dead BMC fails its node at the first BMC step; the others went on
        assert results["cmp2"]["state"] == "provisioning failed"
        assert "one-time network boot" in str(results["cmp2"]["reason"])

        # DNS: forward and reverse, checked with dig
        assert lab.dig("ctl1.sim.example.test", "A") == "127.0.0.11"
        assert lab.dig("-x", "127.0.0.14") == "cmp1.sim.example.test."
        assert lab.dig("keystone.sim.example.test", "CNAME") == "api.sim.example.test."

        # after the install the BMC boots the node from disk, persistently
        bootparam = lab.ipmitool(0, "chassis", "bootparam", "get", "5")
        assert "Hard-Drive" in bootparam, bootparam
        # and the boot server now sends the node to its local disk
        events = lab.cli("events", "ctl1", "--json").stdout
        assert "boot script served (install" in events
        assert "kickstart served" in events
        # the CLI found the running daemon and the work ran there, not in the CLI
        assert '"actor": "daemon"' in events

        # quorum guard: ctl3 is down, so taking ctl1 would leave 1 of 3
        refused = lab.cli("reprovision", "ctl1", "--yes")
        assert refused.returncode == EXIT_CONFLICT
        assert "ctl3" in refused.stderr and "--force" in refused.stderr
        assert results_by_node(lab.cli("nodes", "--json").stdout)["ctl1"]["state"] == "active"

        # one command reprovisions a node (the failed-node case)
        again = lab.cli("reprovision", "cmp1", "--yes", "--json", timeout=300)
        assert again.returncode == 0, again.stdout + again.stderr
        assert results_by_node(again.stdout)["cmp1"]["state"] == "active"
        history = lab.cli("events", "cmp1", "--json").stdout
        assert history.count("kickstart served") == 2


def test_daemon_killed_mid_install_resumes_without_a_second_power_cycle(
    tmp_path: Path,
) -> None:
    with sim_lab(tmp_path) as lab:
        assert lab.serve is not None
        # ctl3's installer never calls back: it waits in the "installed" step
        client = subprocess.Popen(
            lab.argv("provision", "ctl3", "--json"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while _state(lab, "ctl3") != "installing":
            assert time.monotonic() < deadline, _state(lab, "ctl3")
            time.sleep(0.3)
        lab.serve.proc.kill()  # kill -9 of the daemon mid-deployment
        lab.serve.proc.wait()
        client.wait(timeout=60)

        lab.restart_serve()
        lab.serve.wait_log("daemon: resuming ctl3", timeout=90)
        deadline = time.monotonic() + 90
        while _state(lab, "ctl3") == "installing":
            assert time.monotonic() < deadline
            time.sleep(0.5)
        events = json.loads(lab.cli("events", "ctl3", "--json").stdout)
        assert _state(lab, "ctl3") == "installing failed"  # it never calls back
        messages = [e["message"] for e in events]
        assert "resuming at step 'wait for installed callback'" in messages
        assert sum(1 for e in events if e["kind"] == "power") == 1  # no second power cycle
        assert any("took over stale reservation" in m for m in messages)


def _state(lab: SimLab, name: str) -> str | None:
    nodes = results_by_node(lab.cli("nodes", "--json").stdout)
    return nodes[name]["state"]  # type: ignore[return-value]


def test_first_rebuild_bootstraps_one_controller_then_decommission(tmp_path: Path) -> None:
    with sim_lab(tmp_path, ALL_GOOD) as lab:
        run = lab.cli("rebuild", "--all", "--yes", "--json", timeout=600)
        assert run.returncode == 0, run.stdout + run.stderr
        assert {r["state"] for r in json.loads(run.stdout)} == {"active"}

        def first(name: str, message: str) -> str:
            events = json.loads(lab.cli("events", name, "--json").stdout)
            return next(
                e["at"] for e in events if message in e["message"] or e.get("to") == message
            )

        # one controller bootstraps alone; the others start once it is active
        ctl1_active = first("ctl1", "active")
        for other in ("ctl2", "ctl3", "cmp1"):
            assert first(other, "provisioning") >= ctl1_active

        # decommission: powered off, out of DNS and DHCP, kept in the inventory
        gone = lab.cli("decommission", "cmp1", "--yes", "--json")
        assert gone.returncode == 0, gone.stdout + gone.stderr
        assert results_by_node(gone.stdout)["cmp1"]["state"] == "decommissioned"
        assert lab.dig("cmp1.sim.example.test", "A") == ""
        assert lab.dig("-x", "127.0.0.14") == ""
        assert not (lab.state / "dhcp" / "hosts" / "cmp1.host").exists()
        assert "Chassis Power is off" in lab.ipmitool(3, "chassis", "power", "status")
        assert "cmp1" in lab.cli("nodes").stdout

"""Provision and reprovision through the whole pipeline with real servers.

Real BIND (RFC 2136), real `provisioner serve` (TFTP + HTTP + kickstart +
callbacks + hooks), virtual IPMI BMCs; the nodes' firmware and installer are
simulated but fetch over TFTP/HTTP and call back like the real ones.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from contextlib import suppress
from pathlib import Path

from provisioner.errors import EXIT_CONFLICT, EXIT_PARTIAL
from tests.functional.bootserver_support import alive, wait_for
from tests.functional.pipeline_lab import ALL_GOOD, SimLab, results_by_node, sim_lab

#: the site needs its controllers; only cmp1 is deployed
ONE_NODE = [
    ("ctl1", "controller", "normal", "ipmi"),
    ("ctl2", "controller", "normal", "ipmi"),
    ("cmp1", "compute", "normal", "ipmi"),
]


def slow_hook(seconds: int) -> dict[str, str]:
    """A site hook that says when it starts (its pid in the state dir) and, on its first
    run only, takes ``seconds``."""
    return {
        "common/20-slow": (
            "#!/bin/sh\n"
            'state="$PROVISIONER_STATE_DIR/slow-$PROVISIONER_NODE"\n'
            'echo "slow hook on $PROVISIONER_NODE"\n'
            'if [ ! -e "$state.ran" ]; then\n'
            '  touch "$state.ran"\n'
            "  sleep " + str(seconds) + ' & echo $! > "$state.pid.tmp"\n'
            '  mv "$state.pid.tmp" "$state.pid"\n'
            "  wait\n"
            "fi\n"
            'echo "slow hook done"\n'
        )
    }


def children(pid: int) -> list[int]:
    """The direct children of ``pid``."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with suppress(OSError):
            found += [int(k) for k in (task / "children").read_text().split()]
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def gunicorn_workers(serve_pid: int) -> list[int]:
    """The HTTP workers: children of serve's HTTP process (the gunicorn master). With
    setproctitle installed (the openstack extra brings it) gunicorn retitles it
    "gunicorn: master [provisioner-http]" (bootserver/http.py's proc_name)."""
    names = ("provisioner.bootserver.http", "[provisioner-http]")
    (http,) = [p for p in children(serve_pid) if any(n in cmdline(p) for n in names)]
    return children(http)


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


def test_killing_the_web_workers_while_hooks_run_loses_nothing(tmp_path: Path) -> None:
    with sim_lab(tmp_path, ONE_NODE, slow_hook(6)) as lab:
        assert lab.serve is not None
        client = subprocess.Popen(
            lab.argv("provision", "cmp1", "--json"), stdout=subprocess.PIPE, text=True
        )
        pid_file = lab.state / "slow-cmp1.pid"
        wait_for("the slow hook to start", pid_file.exists, timeout=120)
        hook = int(pid_file.read_text())  # the hook's sleep; its shell runs in the daemon
        assert parent(parent(hook)) == lab.serve.proc.pid
        workers = gunicorn_workers(lab.serve.proc.pid)
        assert workers
        for worker in workers:  # what an OOM kill or a crash does to a worker
            os.kill(worker, signal.SIGKILL)
        wait_for("the workers to die", lambda: not any(alive(w) for w in workers))
        assert alive(hook)  # the hook does not run in a web worker

        out, _ = client.communicate(timeout=180)
        assert client.returncode == 0, out
        assert results_by_node(out)["cmp1"]["state"] == "active"
        events = json.loads(lab.cli("events", "cmp1", "--json").stdout)
        slow = [e["message"] for e in events if e["message"].startswith("hook common/20-slow")]
        assert slow == ["hook common/20-slow exited 0\nslow hook on cmp1\nslow hook done"]
        # gunicorn replaced its workers; the boot server answers as before
        wait_for("new workers", lambda: gunicorn_workers(lab.serve.proc.pid), timeout=30)
        assert not set(gunicorn_workers(lab.serve.proc.pid)) & set(workers)


def test_daemon_killed_during_hooks_resumes_at_the_recorded_hook(tmp_path: Path) -> None:
    with sim_lab(tmp_path, ONE_NODE, slow_hook(120)) as lab:
        assert lab.serve is not None
        client = subprocess.Popen(
            lab.argv("provision", "cmp1", "--json"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        pid_file = lab.state / "slow-cmp1.pid"
        wait_for("the slow hook to start", pid_file.exists, timeout=120)
        record = json.loads(lab.cli("status", "cmp1", "--json").stdout)["state"]
        assert (record["state"], record["step"]) == ("configuring", "hook:common/20-slow")
        lab.serve.proc.kill()  # kill -9 of the daemon mid-hook
        lab.serve.proc.wait()
        client.wait(timeout=60)
        with suppress(ProcessLookupError):  # the dead daemon's hook, orphaned
            os.kill(int(pid_file.read_text()), signal.SIGKILL)

        lab.restart_serve()
        lab.serve.wait_log("daemon: resuming cmp1", timeout=90)
        deadline = time.monotonic() + 90
        while _state(lab, "cmp1") == "configuring":
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert _state(lab, "cmp1") == "active"
        events = json.loads(lab.cli("events", "cmp1", "--json").stdout)
        messages = [e["message"] for e in events]
        assert "resuming at hook common/20-slow" in messages
        firsts = [e["message"].split("\n")[0] for e in events if e["kind"] == "hook"]
        # the hooks before the recorded one did not run again; that one did, to the end
        assert firsts.count("hook common/10-record-context exited 0") == 1
        assert firsts.count("hook common/20-slow exited 0") == 1
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

        # one controller bootstraps (the compute node alongside: it needs no cluster);
        # the other controllers start once it is active. Events have whole seconds and a
        # simulated node takes less: the log's lines give the order
        ctl1_active = first("ctl1", "active")
        for other in ("ctl2", "ctl3"):
            assert first(other, "provisioning") >= ctl1_active
        log = (lab.state / "provisioner.log").read_text()

        def line(text: str) -> int:
            assert text in log, text
            return log.index(text)

        assert (
            line("node cmp1: ready -> provisioning")
            < line("node ctl1: configuring -> active")
            < min(line(f"node {c}: ready -> provisioning") for c in ("ctl2", "ctl3"))
        )

        # decommission: powered off, out of DNS and DHCP, kept in the inventory
        gone = lab.cli("decommission", "cmp1", "--yes", "--json")
        assert gone.returncode == 0, gone.stdout + gone.stderr
        assert results_by_node(gone.stdout)["cmp1"]["state"] == "decommissioned"
        assert lab.dig("cmp1.sim.example.test", "A") == ""
        assert lab.dig("-x", "127.0.0.14") == ""
        assert not (lab.state / "dhcp" / "hosts" / "cmp1.host").exists()
        assert "Chassis Power is off" in lab.ipmitool(3, "chassis", "power", "status")
        assert "cmp1" in lab.cli("nodes").stdout

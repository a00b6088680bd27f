"""The generated keepalived configuration, run for real: three controllers in three network
namespaces on one bridge. Stopping the master moves the VIP to the next controller."""

from __future__ import annotations

import os
import signal
from contextlib import ExitStack
from pathlib import Path

import pytest

from provisioner.inventory import Site
from provisioner.roles import DeployFacts, generate
from tests.functional.roles.conftest import bridge_lab, needs_root, run, wait_for
from tests.functional.roles.daemons import keepalived, keepalived_pids

pytestmark = [pytest.mark.functional, needs_root]
VIP = "203.0.113.10"
CONTROLLERS = ["ctl1", "ctl2", "ctl3"]
FAILOVER_LIMIT_S = 15.0  # generous for a loaded machine; VRRP itself needs ~3.5 s


def holds_vip(ns: str) -> bool:
    out = run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "pv7eth"]).stdout
    return f" {VIP}/" in out


def test_vip_moves_to_another_controller_when_the_master_stops(
    lab_site: Site, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        spaces = bridge_lab(lab_site, CONTROLLERS, stack)
        procs = {}
        for node in CONTROLLERS:
            run_dir = tmp_path / node
            run_dir.mkdir()
            conf = run_dir / "keepalived.conf"
            conf.write_text(generate(lab_site, node, DeployFacts())["keepalived/keepalived.conf"])
            procs[node] = stack.enter_context(keepalived(spaces[node], conf, run_dir))

        # ctl1 has the highest priority: it becomes master and holds the VIP
        wait_for(lambda: holds_vip(spaces["ctl1"]), timeout=30)
        assert not holds_vip(spaces["ctl2"]) and not holds_vip(spaces["ctl3"])
        run(["ip", "netns", "exec", spaces["hub"], "ping", "-c1", "-W2", VIP])

        # stop the master: the next controller by priority takes the VIP over
        procs["ctl1"].send_signal(signal.SIGTERM)
        took = wait_for(lambda: holds_vip(spaces["ctl2"]), timeout=FAILOVER_LIMIT_S)
        procs["ctl1"].wait(timeout=15)
        print(f"VIP moved ctl1 -> ctl2 in {took:.1f}s")
        assert not holds_vip(spaces["ctl1"]) and not holds_vip(spaces["ctl3"])
        run(["ip", "netns", "exec", spaces["hub"], "ping", "-c1", "-W2", VIP])

        # the new master hangs (frozen, no goodbye advertisement): ctl3 takes over once
        # ctl2's adverts are missing for the master-down interval
        for pid in keepalived_pids(procs["ctl2"], tmp_path / "ctl2"):
            os.kill(pid, signal.SIGSTOP)
        took = wait_for(lambda: holds_vip(spaces["ctl3"]), timeout=FAILOVER_LIMIT_S)
        print(f"VIP moved ctl2 -> ctl3 after ctl2 hung, in {took:.1f}s")

"""The generated keepalived configuration, run for real: three controllers in three network
namespaces on one bridge. Stopping the master moves the VIP to the next controller."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from provisioner.inventory import Site
from provisioner.roles import DeployFacts, generate
from tests.functional.roles.conftest import bridge_lab, needs_root, run

pytestmark = [pytest.mark.functional, needs_root]
VIP = "203.0.113.10"
CONTROLLERS = ["ctl1", "ctl2", "ctl3"]
FAILOVER_LIMIT_S = 15.0  # generous for a loaded machine; VRRP itself needs ~3.5 s


def holds_vip(ns: str) -> bool:
    out = run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "pv7eth"]).stdout
    return f" {VIP}/" in out


def wait_for(predicate, timeout: float) -> float:  # type: ignore[no-untyped-def]
    """Seconds until predicate() held; fails after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s")


def keepalived_pids(proc: subprocess.Popen[bytes], run_dir: Path) -> list[int]:
    """The parent and its VRRP child (keepalived always forks one)."""
    pids = [proc.pid]
    vrrp_pid = run_dir / "v.pid"
    if vrrp_pid.exists() and vrrp_pid.read_text().strip():
        pids.append(int(vrrp_pid.read_text()))
    return pids


@contextmanager
def keepalived(ns: str, conf: Path, run_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    cmd = [
        *["ip", "netns", "exec", ns, "keepalived", "--dont-fork", "--log-console", "--vrrp"],
        *["-f", str(conf), "-p", str(run_dir / "k.pid"), "-r", str(run_dir / "v.pid")],
    ]
    log = (run_dir / "keepalived.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            for pid in keepalived_pids(proc, run_dir):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)  # a frozen one must wake up to stop
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        log.close()


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

"""Bad BMCs fail alone: a clear per-node error within the timeout, the rest succeed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from power_support import driver, free_ports, running, spec

from provisioner.errors import EXIT_PARTIAL, PowerError
from provisioner.power.base import PowerDriver
from provisioner.power.fanout import run_many

pytestmark = pytest.mark.functional

PASSWORD = "fanout-Secret-7"
TIMEOUT = 8.0
SLACK = 5.0  # scheduling on a loaded 2-core machine


def _freeze_when_off(state_file: Path, pid: int, done: threading.Event) -> None:
    """Stop the BMC process (SIGSTOP) right after it executed 'power off'."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not done.is_set():
        try:
            if json.loads(state_file.read_text())["power"] == "off":
                os.kill(pid, signal.SIGSTOP)
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.005)


def test_fanout_reports_each_bad_bmc_and_finishes_the_good_ones(tmp_path: Path) -> None:
    ports = free_ports(6)
    good, frozen, unreachable = ports[:4], ports[4], ports[5]
    specs = [spec(f"good{i}", p, PASSWORD, tmp_path) for i, p in enumerate(good)]
    # simulated BMCs share a process: the one to freeze gets its own
    with running(specs), running([spec("frozen", frozen, PASSWORD, tmp_path)]) as children:
        frozen_child = children[0]
        drivers = [driver(f"good{i}", p, PASSWORD, TIMEOUT) for i, p in enumerate(good)]
        hung = driver("frozen", frozen, PASSWORD, TIMEOUT, min_interval=2.0)
        hung.power_on()
        drivers.append(hung)
        drivers.append(driver("badpass", good[0], "wrong-password", TIMEOUT))
        drivers.append(driver("gone", unreachable, PASSWORD, TIMEOUT))

        done = threading.Event()
        watcher = threading.Thread(
            target=_freeze_when_off,
            args=(tmp_path / "frozen.json", frozen_child.proc.pid, done),
        )
        watcher.start()
        try:
            results = {r.node: r for r in run_many(drivers, lambda d: d.power_cycle(), fanout=50)}
        finally:
            done.set()
            watcher.join()
            os.kill(frozen_child.proc.pid, signal.SIGCONT)

    for i in range(4):
        assert results[f"good{i}"].ok, results[f"good{i}"].error
        assert results[f"good{i}"].seconds < TIMEOUT  # not held up by the dead ones

    frozen_result = results["frozen"]
    assert not frozen_result.ok
    assert frozen_result.error_type == "BmcTimeout"
    assert f"node frozen: BMC 127.0.0.1:{frozen}:" in (frozen_result.error or "")
    assert "within the 8s timeout" in (frozen_result.error or "")
    assert frozen_result.seconds <= TIMEOUT + SLACK

    bad = results["badpass"]
    assert bad.error_type == "BmcAuthError"
    assert f"node badpass: BMC 127.0.0.1:{good[0]}: login: credentials rejected" in (
        bad.error or ""
    )
    assert bad.seconds <= TIMEOUT + SLACK

    gone = results["gone"]
    assert gone.error_type in ("BmcTimeout", "BmcUnreachable")
    assert f"node gone: BMC 127.0.0.1:{unreachable}:" in (gone.error or "")
    assert gone.seconds <= TIMEOUT + SLACK

    for result in results.values():
        assert PASSWORD not in (result.error or "")
        assert "wrong-password" not in (result.error or "")


def _site_with_bmc_ports(site_dir: Path, ports: list[int]) -> None:
    text = (site_dir / "site.yaml").read_text()
    for i, port in enumerate(ports):
        text = text.replace(f"port: {6230 + i},", f"port: {port},")
    # ctl3 gets its own, wrong password
    (site_dir / "secrets" / "ctl3-bmc").write_text("definitely-wrong\n")
    (site_dir / "secrets" / "ctl3-bmc").chmod(0o600)
    shared = "{file: secrets/bmc-password, generate: password}"
    before = f"port: {ports[2]}, user: admin, password: {shared}"
    assert before in text
    text = text.replace(
        before, f"port: {ports[2]}, user: admin, password: {{file: secrets/ctl3-bmc}}"
    )
    (site_dir / "site.yaml").write_text(text)


def test_power_command_shows_a_table_with_each_node_result(site_dir: Path) -> None:
    ports = free_ports(10)
    _site_with_bmc_ports(site_dir, ports)
    password = (site_dir / "secrets" / "bmc-password").read_text().strip()
    names = ["ctl1", "ctl2", "ctl3", "net1", "net2", "sto1", "sto2", "cmp1", "cmp2", "cmp3"]
    # every node has a BMC except net1 (unreachable)
    specs = [
        spec(name, port, password, site_dir / "vbmc")
        for name, port in zip(names, ports, strict=True)
        if name != "net1"
    ]
    with running(specs):
        cmd = [sys.executable, "-m", "provisioner", "--site", str(site_dir / "site.yaml")]
        cmd += ["--state-dir", str(site_dir / "state"), "power", "on", "--all"]
        start = time.monotonic()
        result = subprocess.run(
            [*cmd, "--timeout", str(TIMEOUT), "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        elapsed = time.monotonic() - start
    assert result.returncode == EXIT_PARTIAL
    assert "error: power on: 2 of 10 node(s) failed" in result.stderr
    rows = {row["node"]: row for row in json.loads(result.stdout)}
    assert {n for n, r in rows.items() if r["ok"]} == set(names) - {"ctl3", "net1"}
    assert all(rows[n]["result"] == "on" for n in names if n not in ("ctl3", "net1"))
    assert "credentials rejected" in rows["ctl3"]["error"]
    assert rows["net1"]["error"].startswith(f"node net1: BMC 127.0.0.1:{ports[3]}: ")
    assert elapsed < 60  # one command, not ten timeouts in a row
    assert password not in result.stdout + result.stderr
    assert "definitely-wrong" not in result.stdout + result.stderr


def test_overlapping_logins_to_one_bmc_each_get_their_own_answer(tmp_path: Path) -> None:
    """Two operators (or a job and a status poll) on one BMC at once, one with a
    wrong password: the right ones read the power state, the wrong one is told
    its credentials were rejected, every time."""
    ports = free_ports(3)
    specs = [spec(f"bmc{i}", p, PASSWORD, tmp_path) for i, p in enumerate(ports)]
    outcomes: list[tuple[str, str]] = []

    def read(d: PowerDriver) -> None:
        try:
            outcomes.append((d.node, d.power_state()))
        except PowerError as exc:
            outcomes.append((d.node, type(exc).__name__))
        except Exception as exc:  # what this test is about: nothing unmapped escapes
            outcomes.append((d.node, f"unmapped {type(exc).__name__}: {exc}"))

    with running(specs):
        for _ in range(20):
            drivers = [driver(f"good{i}", p, PASSWORD, TIMEOUT) for i, p in enumerate(ports)]
            drivers += [driver(f"twin{i}", p, PASSWORD, TIMEOUT) for i, p in enumerate(ports)]
            drivers += [
                driver(f"bad{i}", p, "wrong-password", TIMEOUT) for i, p in enumerate(ports)
            ]
            threads = [threading.Thread(target=read, args=(d,)) for d in drivers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=3 * TIMEOUT)

    assert len(outcomes) == 20 * 9
    wrong = [(node, what) for node, what in outcomes if what != _expected(node)]
    assert not wrong, wrong


def _expected(node: str) -> str:
    return "BmcAuthError" if node.startswith("bad") else "off"

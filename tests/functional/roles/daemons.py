"""Daemons of the controller HA stack, run inside a test's network namespaces."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from provisioner import programs


def stop(proc: subprocess.Popen[bytes], grace: float = 15) -> None:
    """TERM, then KILL if it is still there after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


@contextmanager
def background(cmd: list[str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process with its output in ``log_path``; stopped (TERM, then KILL) on exit."""
    log = log_path.open("wb")
    proc = subprocess.Popen(programs.command(cmd), stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop(proc)
        log.close()


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
    proc = subprocess.Popen(programs.command(cmd), stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            for pid in keepalived_pids(proc, run_dir):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)  # a frozen one must wake up to stop
        stop(proc)
        log.close()

"""The one writer of dnsmasq's host files and the one place that tells dnsmasq to re-read.

``hosts.py`` plans (pure); this applies: `serve` syncs the whole hostsdir to the plan
at start and on site edits, the pipeline puts or removes one node's entry. dnsmasq
picks up new files by itself; a changed or removed one is only forgotten after a
SIGHUP, sent here to the dnsmasq that runs with our configuration (found through
its pidfile, never by name).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

from provisioner.dhcp.hosts import DhcpPaths, HostsDiff, diff_hosts

log = logging.getLogger(__name__)

#: serve's site syncs and the pipeline's per-node writes run in threads of one
#: process (the daemon lives in serve): one at a time, so a staged file is never
#: renamed away under another writer
_lock = threading.Lock()


def read_hosts(hostsdir: Path) -> dict[str, str]:
    if not hostsdir.is_dir():
        return {}
    return {p.name: p.read_text() for p in hostsdir.iterdir() if p.is_file()}


def _write(paths: DhcpPaths, name: str, text: str) -> None:
    """One host file, appearing whole (written aside, then renamed in)."""
    paths.hostsdir.mkdir(parents=True, exist_ok=True)
    paths.staging.mkdir(parents=True, exist_ok=True)
    tmp = paths.staging / name
    tmp.write_text(text)
    tmp.chmod(0o600)
    os.replace(tmp, paths.hostsdir / name)


def sync_hosts(paths: DhcpPaths, wanted: dict[str, str]) -> HostsDiff:
    """Make the hostsdir hold exactly ``wanted`` (the caller reloads on ``needs_reload``)."""
    with _lock:
        diff = diff_hosts(read_hosts(paths.hostsdir), wanted)
        for name in diff.added + diff.changed:
            _write(paths, name, wanted[name])
        for name in diff.removed:
            (paths.hostsdir / name).unlink(missing_ok=True)
        paths.hostsdir.mkdir(parents=True, exist_ok=True)
    return diff


def put_host(paths: DhcpPaths, name: str, text: str) -> bool:
    """Write one host file if it differs; True if something changed.

    A changed entry (the node's address or MACs edited) also takes a reload:
    dnsmasq reads the new file by itself but keeps the old line until SIGHUP."""
    path = paths.hostsdir / name
    with _lock:
        before = path.read_text() if path.is_file() else None
        if before == text:
            return False
        _write(paths, name, text)
    if before is not None:
        reload_dnsmasq(paths)
    return True


def remove_host(paths: DhcpPaths, name: str) -> bool:
    """Remove one host file and have dnsmasq forget it; True if it was there."""
    path = paths.hostsdir / name
    with _lock:
        if not path.exists():
            return False
        path.unlink()
    reload_dnsmasq(paths)
    return True


def our_dnsmasq(paths: DhcpPaths) -> int | None:
    """The pid of the dnsmasq running with our configuration, if any."""
    try:
        pid = int(paths.pidfile.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    if b"dnsmasq" in cmdline and str(paths.conf).encode() in cmdline:
        return pid
    return None


def reload_dnsmasq(paths: DhcpPaths, pid: int | None = None) -> bool:
    """SIGHUP: dnsmasq re-reads its host files. False if none of ours runs.

    ``pid``: the dnsmasq the caller supervises (serve knows its child); without
    it, the one our pidfile names (dnsmasq writes it in the foreground too)."""
    pid = pid or our_dnsmasq(paths)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:  # it just died: its successor reads the files afresh
        return False
    log.info("dhcp: dnsmasq asked to re-read its host files (pid %d)", pid)
    return True

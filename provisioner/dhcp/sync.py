"""The one writer of dnsmasq's host files and the one code that tells dnsmasq to re-read.

``provisioner serve`` syncs the whole hostsdir to the site (at start and on every
site edit); the pipeline syncs one node's entry (added when it is provisioned,
removed when it is decommissioned). Both come here, so the files are written one
way (each appears whole, by rename) and dnsmasq is signalled one way: through its
pidfile, whoever started it, and only when a host was removed or changed (new
files it reads by itself, see ``HostsDiff.needs_reload``).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Collection
from pathlib import Path

from provisioner.dhcp.hosts import DhcpPaths, HostsDiff, diff_hosts

log = logging.getLogger(__name__)

#: serve's site sync and the pipeline's per-node syncs run in threads of one process
_lock = threading.Lock()


def read_hosts(hostsdir: Path) -> dict[str, str]:
    """The host files there are now (name -> contents)."""
    if not hostsdir.is_dir():
        return {}
    return {p.name: p.read_text() for p in hostsdir.iterdir() if p.is_file()}


def sync_hosts(
    paths: DhcpPaths, wanted: dict[str, str], only: Collection[str] | None = None
) -> HostsDiff:
    """Make the hostsdir hold ``wanted``, then reload dnsmasq if it must re-read.

    ``only``: the file names this sync is about (one node's, from the pipeline);
    files outside it are left alone. ``None``: the whole folder (serve).
    """
    with _lock:
        paths.hostsdir.mkdir(parents=True, exist_ok=True)  # dnsmasq's conf names it
        paths.staging.mkdir(parents=True, exist_ok=True)
        current = read_hosts(paths.hostsdir)
        if only is not None:
            current = {k: v for k, v in current.items() if k in only}
            wanted = {k: v for k, v in wanted.items() if k in only}
        diff = diff_hosts(current, wanted)
        for name in diff.added + diff.changed:
            tmp = paths.staging / name
            tmp.write_text(wanted[name])
            os.replace(tmp, paths.hostsdir / name)
        for name in diff.removed:
            (paths.hostsdir / name).unlink(missing_ok=True)
    done = {"added": diff.added, "changed": diff.changed, "removed": diff.removed}
    for verb, names in done.items():
        for name in names:
            log.info("dhcp: host %s %s", name.removesuffix(".host"), verb)
    if diff.needs_reload:
        reload_dnsmasq(paths)
    return diff


def dnsmasq_pid(paths: DhcpPaths) -> int | None:
    """The pid of the dnsmasq running with this configuration, if one is.

    Read from its pidfile and checked against /proc: a stale pidfile whose pid now
    belongs to another process must never get our signal.
    """
    try:
        pid = int(paths.pidfile.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    if b"dnsmasq" in cmdline and str(paths.conf).encode() in cmdline:
        return pid
    return None


def reload_dnsmasq(paths: DhcpPaths) -> bool:
    """SIGHUP: dnsmasq re-reads the hostsdir. False if no dnsmasq of ours runs."""
    pid = dnsmasq_pid(paths)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return False
    log.info("dhcp: dnsmasq asked to re-read its host files")
    return True

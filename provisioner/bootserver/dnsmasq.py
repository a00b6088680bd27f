"""Run dnsmasq as a supervised child process and keep its host files in sync.

dnsmasq stays in the foreground (``--keep-in-foreground``) with its own pid and
lease files under the state dir; its log lines (stderr) are re-logged here with
the node name. New host files are picked up by dnsmasq itself (inotify on the
hostsdir); changed or removed ones take a SIGHUP, never a restart. If dnsmasq
dies it is started again, with a growing pause.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from provisioner import programs
from provisioner.dhcp.files import reload_dnsmasq, sync_hosts
from provisioner.dhcp.hosts import DhcpPaths, DhcpPlan, HostsDiff
from provisioner.errors import DnsmasqError, ProvisionerError

log = logging.getLogger(__name__)

DNSMASQ = "dnsmasq"
#: "DHCPACK(br0) 192.0.2.11 52:54:00:12:34:56 ctl1", "PXE(br0) 52:54:00:12:34:56 proxy"
_EVENT_LINE = re.compile(
    r"\b(?:DHCP[A-Z]+|PXE|BOOTP)\([^)]*\)\s+(?:\d+\.\d+\.\d+\.\d+\s+)?"
    r"([0-9a-f]{2}(?::[0-9a-f]{2}){5})\b"
)


def die_with_parent() -> None:
    """In a child before exec: get SIGTERM when the thread that started it dies
    (Linux PR_SET_PDEATHSIG), so a killed ``serve`` leaves no orphans behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def check_config(conf: Path) -> None:
    """``dnsmasq --test``: reject a bad configuration before starting."""
    done = subprocess.run(
        [programs.path(DNSMASQ), "--test", f"--conf-file={conf}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        raise DnsmasqError(f"dnsmasq rejects {conf}: {done.stderr.strip() or done.stdout.strip()}")


class Dnsmasq:
    """One supervised dnsmasq. ``node_of_mac`` names the node in log lines."""

    def __init__(
        self,
        paths: DhcpPaths,
        node_of_mac: Callable[[str], str | None] = lambda mac: None,
        restart_delay: float = 1.0,
    ) -> None:
        self.paths = paths
        self.node_of_mac = node_of_mac
        self.restart_delay = restart_delay
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    # -- files -----------------------------------------------------------------
    def apply(self, plan: DhcpPlan) -> HostsDiff:
        """Write the configuration and host files; SIGHUP if dnsmasq must re-read."""
        self.paths.base.mkdir(parents=True, exist_ok=True, mode=0o700)
        conf_changed = not self.paths.conf.exists() or self.paths.conf.read_text() != plan.conf
        if conf_changed:
            tmp = self.paths.conf.with_suffix(".tmp")
            tmp.write_text(plan.conf)
            check_config(tmp)
            os.replace(tmp, self.paths.conf)
        diff = sync_hosts(self.paths, plan.hosts)
        for name in diff.added:
            log.info("dhcp: host %s added", name.removesuffix(".host"))
        for name in diff.changed:
            log.info("dhcp: host %s changed", name.removesuffix(".host"))
        for name in diff.removed:
            log.info("dhcp: host %s removed", name.removesuffix(".host"))
        if conf_changed and self.running:
            log.info("dhcp: configuration changed, restarting dnsmasq")
            self.restart()
        elif diff.needs_reload:
            self.reload()
        return diff

    # -- process ---------------------------------------------------------------
    @property
    def running(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc else None

    def _spawn(self) -> subprocess.Popen[str]:
        argv = [programs.path(DNSMASQ), "--keep-in-foreground", f"--conf-file={self.paths.conf}"]
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,  # a Ctrl-C on the terminal reaches us, not it
                preexec_fn=die_with_parent,
            )
        except OSError as exc:
            raise DnsmasqError(f"cannot start dnsmasq: {exc}") from exc
        threading.Thread(target=self._pump, args=(proc,), name="dnsmasq-log", daemon=True).start()
        log.info("dhcp: dnsmasq started (pid %d)", proc.pid)
        return proc

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip()
            m = _EVENT_LINE.search(line)
            if m is None:  # start-up lines and the details of --log-dhcp
                log.debug("dhcp: %s", line)
                continue
            node = self.node_of_mac(m.group(1))
            if node:
                log.info("dhcp: node %s: %s", node, line)
            else:
                log.info("dhcp: unknown MAC %s: %s", m.group(1), line)

    def start(self, ready_timeout: float = 10.0) -> None:
        """Start dnsmasq and a thread that restarts it if it dies."""
        with self._lock:
            self._stopping.clear()
            self._proc = self._spawn()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if not self.running:
                code = self._proc.returncode if self._proc else None
                raise DnsmasqError(f"dnsmasq exited at start (code {code}); see the log above")
            if self.paths.pidfile.exists():
                break
            time.sleep(0.05)
        self._supervisor = threading.Thread(target=self._supervise, name="dnsmasq", daemon=True)
        self._supervisor.start()

    def _supervise(self) -> None:
        delay = self.restart_delay
        while not self._stopping.is_set():
            proc = self._proc
            if proc is None:
                return
            try:
                code = proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
            if self._stopping.is_set():
                return
            log.error("dhcp: dnsmasq exited with code %s; restarting in %.0f s", code, delay)
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                try:
                    self._proc = self._spawn()
                except ProvisionerError as exc:  # cannot start, or dnsmasq was removed
                    log.error("dhcp: %s", exc)
            delay = min(delay * 2, 30.0)

    def reload(self) -> None:
        """dnsmasq re-reads the hostsdir (drops removed and changed hosts)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            reload_dnsmasq(self.paths, pid=proc.pid)

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.info("dhcp: dnsmasq stopped")
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join(timeout=timeout)
            self._supervisor = None

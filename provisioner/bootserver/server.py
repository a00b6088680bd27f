"""``provisioner serve``: DHCP (dnsmasq), TFTP (tftpy) and HTTP (gunicorn) together.

This process runs the dnsmasq supervisor and the TFTP thread, and starts the
HTTP side as a child process (see http.py for why). It follows site.yaml: when
the inventory changes, the DHCP host files are rewritten (no restart). On
SIGTERM or SIGINT everything stops, dnsmasq and the HTTP workers included.
"""

from __future__ import annotations

import getpass
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from provisioner import programs
from provisioner.bootserver.dnsmasq import Dnsmasq, die_with_parent
from provisioner.bootserver.tftp import TftpService, stage_ipxe_binaries
from provisioner.dhcp.files import our_dnsmasq
from provisioner.dhcp.hosts import DEFAULT_EFI_BINARY, DhcpPaths, plan_dhcp
from provisioner.errors import ProvisionerError, ServeError
from provisioner.inventory.models import ProvisionerEndpoint, Site
from provisioner.inventory.source import SiteSource, write_snapshot
from provisioner.settings import StateDir


class Companion(Protocol):
    """A service that runs beside the boot server and shares its site source:
    the pipeline daemon with its admin API (started by the CLI, which sits above both)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


log = logging.getLogger(__name__)

_PACKAGE_PARENT = Path(__file__).resolve().parent.parent.parent


@dataclass
class ServeOptions:
    site_path: Path
    state_dir: Path
    db_url: str | None = None
    boot_files_dir: Path | None = None  # default: <state dir>/boot-files
    tftp_root: Path | None = None  # default: Debian's iPXE binaries, staged
    http_bind: str | None = None  # "address:port"; default: the site's provisioner endpoint
    tftp_bind: str | None = None
    dhcp: bool = True
    tftp: bool = True
    workers: int = 4
    threads: int = 32
    efi_binary: str = DEFAULT_EFI_BINARY
    poll_interval: float = 1.0
    log_level: str = "INFO"
    log_file: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    #: the provisioning networks answered (--networks); None: every node of the site
    networks: tuple[str, ...] | None = None

    @property
    def boot_files(self) -> Path:
        return self.boot_files_dir or StateDir(self.state_dir).boot_files


def split_bind(value: str, what: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ServeError(f"{what}: '{value}' is not address:port")
    return host or "0.0.0.0", int(port)


class NodeByAddress:
    """IP or MAC -> node name for log lines, from the current site's index."""

    def __init__(self, sites: SiteSource) -> None:
        self.sites = sites

    def by_ip(self, ip: str) -> str | None:
        node = self.sites.current().node_by_ip(ip)
        return node.name if node else None

    def by_mac(self, mac: str) -> str | None:
        node = self.sites.current().node_by_mac(mac)
        return node.name if node else None


class BootServer:
    def __init__(self, opts: ServeOptions, site: Site | None = None) -> None:
        """``site``: the site as the caller already loaded it (else loaded here)."""
        self.opts = opts
        self.sites = SiteSource(opts.site_path, site, StateDir(opts.state_dir).site_cache)
        self.names = NodeByAddress(self.sites)
        self.dhcp_paths = DhcpPaths(StateDir(opts.state_dir).dhcp)
        self.dnsmasq: Dnsmasq | None = None
        self.tftp: TftpService | None = None
        self.http_proc: subprocess.Popen[bytes] | None = None
        self.http_sock: socket.socket | None = None
        self.http_address: tuple[str, int] | None = None
        self._generation = -1
        self._snapshot_generation = -1
        self.stop_event = threading.Event()
        #: started after the boot server's own services, stopped before them
        self.companions: list[Companion] = []

    # -- DHCP ------------------------------------------------------------------
    def sync_dhcp(self) -> None:
        if self.dnsmasq is None:
            return
        site = self.sites.current()
        plan = plan_dhcp(
            site,
            self.dhcp_paths,
            self.opts.efi_binary,
            user=getpass.getuser(),
            exclude=self._decommissioned() | self._others(site),
        )
        self.dnsmasq.apply(plan)
        self._generation = self.sites.generation

    def _decommissioned(self) -> frozenset[str]:
        from provisioner.state.machine import NodeState
        from provisioner.state.store import Store

        store = Store.open(self.opts.state_dir, self.opts.db_url)
        try:
            return frozenset(r.name for r in store.all() if r.state is NodeState.DECOMMISSIONED)
        finally:
            store.close()

    def _others(self, site: Site) -> frozenset[str]:
        """Nodes of networks another instance serves: no DHCP host entry here."""
        if self.opts.networks is None:
            return frozenset()
        return frozenset(
            n.name for n in site.nodes if site.network_name_of(n) not in self.opts.networks
        )

    def endpoint(self) -> ProvisionerEndpoint:
        """Where this instance listens by default: its first network's boot server address."""
        site = self.sites.current()
        if self.opts.networks:
            return site.provisioning_networks()[self.opts.networks[0]].provisioner
        return site.network.provisioner

    def _start_dhcp(self) -> None:
        self.dnsmasq = Dnsmasq(self.dhcp_paths, node_of_mac=self.names.by_mac)
        _stop_stale_dnsmasq(self.dhcp_paths)
        self.sync_dhcp()
        self.dnsmasq.start()

    # -- TFTP ------------------------------------------------------------------
    def _start_tftp(self) -> None:
        prov = self.endpoint()
        host, port = split_bind(
            self.opts.tftp_bind or f"{prov.address}:{prov.tftp_port}", "--tftp-bind"
        )
        root = self.opts.tftp_root
        if root is None:  # Debian's package, copied into a root of our own
            ipxe = [Path(programs.path(n)) for n in ("undionly.kpxe", "ipxe.efi", "snponly.efi")]
            root = stage_ipxe_binaries(ipxe[0].parent, StateDir(self.opts.state_dir).tftp)
        self.tftp = TftpService(root, host, port, who=self.names.by_ip)
        self.tftp.start()

    # -- HTTP ------------------------------------------------------------------
    def save_site(self) -> None:
        """Keep the site this server runs with where a restarted HTTP side finds it,
        should site.yaml be broken at that moment (inventory/source.py)."""
        site = self.sites.current()
        if self.sites.generation == self._snapshot_generation:
            return
        self._snapshot_generation = self.sites.generation  # tried once per generation
        try:
            write_snapshot(site, StateDir(self.opts.state_dir).last_good_site)
        except OSError as exc:
            log.warning("serve: cannot keep the last good site: %s", exc)

    def _start_http(self) -> None:
        prov = self.endpoint()
        host, port = split_bind(
            self.opts.http_bind or f"{prov.address}:{prov.http_port}", "--http-bind"
        )
        if self.http_sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                sock.close()
                raise ServeError(f"HTTP: cannot listen on {host}:{port}: {exc}") from exc
            sock.listen(1024)
            self.http_sock = sock
            self.http_address = sock.getsockname()[:2]
        self.opts.boot_files.mkdir(parents=True, exist_ok=True)
        self.save_site()
        fd = self.http_sock.fileno()
        argv = [
            sys.executable,
            "-m",
            "provisioner.bootserver.http",
            f"--fd={fd}",
            f"--site={self.opts.site_path.resolve()}",
            f"--state-dir={self.opts.state_dir.resolve()}",
            f"--boot-files={self.opts.boot_files.resolve()}",
            f"--workers={self.opts.workers}",
            f"--threads={self.opts.threads}",
            f"--log-level={self.opts.log_level}",
        ]
        if self.opts.db_url:
            argv.append(f"--db-url={self.opts.db_url}")
        if self.opts.networks is not None:
            argv.append(f"--networks={','.join(self.opts.networks)}")
        if self.opts.log_file:
            argv.append(f"--log-file={self.opts.log_file}")
        env = dict(os.environ, **self.opts.extra_env)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_PACKAGE_PARENT), env.get("PYTHONPATH", "")) if p
        )
        self.http_proc = subprocess.Popen(argv, pass_fds=(fd,), env=env, preexec_fn=die_with_parent)
        self._wait_http_ready()

    def _wait_http_ready(self, timeout: float = 60.0) -> None:
        assert self.http_address is not None
        host, port = self.http_address
        if host == "0.0.0.0":
            host = "127.0.0.1"
        url = f"http://{host}:{port}/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.http_proc is not None and self.http_proc.poll() is not None:
                raise ServeError(f"HTTP server exited at start (code {self.http_proc.returncode})")
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    if reply.status == 200:
                        log.info("http: serving on %s:%d", host, port)
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise ServeError(f"HTTP server not ready at {url} after {timeout:.0f} s")

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        try:
            if self.opts.dhcp:
                self._start_dhcp()
            if self.opts.tftp:
                self._start_tftp()
            self._start_http()
            for companion in self.companions:
                companion.start()
        except BaseException:
            self.stop()
            raise

    def run(self) -> None:
        """Until stop_event: follow site.yaml edits, keep the HTTP side alive."""
        while not self.stop_event.wait(self.opts.poll_interval):
            self.save_site()
            if self.sites.generation != self._generation:
                try:
                    self.sync_dhcp()
                except ProvisionerError as exc:
                    log.error("dhcp: site change not applied: %s", exc)
                    self._generation = self.sites.generation
            proc = self.http_proc
            if proc is not None and proc.poll() is not None and not self.stop_event.is_set():
                log.error("http: server exited (code %s); starting it again", proc.returncode)
                try:
                    self._start_http()
                except ServeError as exc:
                    log.error("%s", exc)

    def stop(self) -> None:
        self.stop_event.set()
        while self.companions:
            self.companions.pop().stop()
        proc, self.http_proc = self.http_proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=40)  # gunicorn's graceful_timeout (30 s) and a margin
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.http_sock is not None:
            self.http_sock.close()
            self.http_sock = None
        if self.tftp is not None:
            self.tftp.stop()
            self.tftp = None
        if self.dnsmasq is not None:
            self.dnsmasq.stop()
            self.dnsmasq = None
        log.info("serve: stopped")


def _stop_stale_dnsmasq(paths: DhcpPaths) -> None:
    """A dnsmasq left by a killed earlier run would hold port 67: end it."""
    pid = our_dnsmasq(paths)
    if pid is not None:
        log.warning("dhcp: stopping dnsmasq pid %d left by an earlier run", pid)
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.05)


def serve_forever(
    opts: ServeOptions,
    companions: Callable[[BootServer], list[Companion]] | None = None,
    site: Site | None = None,
) -> None:
    """Start everything, run until SIGTERM/SIGINT, stop everything."""
    server = BootServer(opts, site)
    if companions is not None:
        server.companions = companions(server)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("serve: %s received, stopping", signal.Signals(signum).name)
        server.stop_event.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.start()
        server.run()
    finally:
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)

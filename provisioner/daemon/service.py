"""The pipeline as a service inside `provisioner serve`.

It owns the operations (one job per request), serves the admin REST API on a
loopback address by default (waitress, a production WSGI server, in this
process so jobs and API share memory), the web dashboard on its own listener
(loopback by default too, ``--ui-bind`` to expose it; ui/), publishes where it
listens for the CLI,
and on start resumes every node a previous daemon left in flight (kill -9
included): the nodes' recorded steps (or hooks) say where to continue. The
hooks run here too, in this process, never in a web worker.

One of several instances on a shared database (``serve --networks``): it
registers under its server name, heartbeats, drives only its networks' nodes,
and on each heartbeat takes over the in-flight nodes of its networks that a
dead partner held (pipeline/takeover.py); networks nobody serves are logged.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from waitress.server import create_server

from provisioner.bootserver import jsonlimits
from provisioner.daemon.api import register_api
from provisioner.daemon.apitoken import ensure_api_token, remove_daemon_file, write_daemon_file
from provisioner.daemon.jobs import JobManager
from provisioner.daemon.ui.app import STREAMS, Streams, create_ui_app
from provisioner.errors import ProvisionerError
from provisioner.inventory.source import SiteSource
from provisioner.pipeline.factory import build_operations
from provisioner.pipeline.operations import NodeResult
from provisioner.pipeline.takeover import survey
from provisioner.state.servers import Servers
from provisioner.state.store import DEFAULT_SERVER_TIMEOUT, Store

log = logging.getLogger(__name__)


#: seconds between heartbeats (and takeover scans) of an instance with --networks
HEARTBEAT_INTERVAL = 5.0
#: heartbeats a partner may miss before it counts as dead (5 s x 6: the store's default 30 s)
SILENT_BEATS = 6


@dataclass(frozen=True)
class Membership:
    """This instance among several on one database: its name and its networks."""

    name: str
    networks: tuple[str, ...]
    heartbeat: float = HEARTBEAT_INTERVAL
    server_timeout: timedelta = DEFAULT_SERVER_TIMEOUT


class DaemonService:
    def __init__(
        self,
        sites: SiteSource,
        state_dir: Path,
        db_url: str | None,
        host: str,
        port: int,
        ui_bind: tuple[str, int] | None = None,
        ui_required: bool = True,
        member: Membership | None = None,
    ) -> None:
        self.sites, self.state_dir, self.member = sites, state_dir, member
        self.store = Store.open(state_dir, db_url)
        actor = "daemon"
        if member is not None:
            self.store.server, self.store.server_timeout = member.name, member.server_timeout
            actor = member.name
        self.servers = Servers(self.store)
        self.operations = build_operations(
            self.store, sites.current, sites.path, state_dir, actor=actor
        )
        if member is not None:
            self.operations.networks = frozenset(member.networks)
        self._stop = threading.Event()
        self._taking: set[str] = set()
        self._taking_lock = threading.Lock()
        self._last_unserved: dict[str, list[str]] = {}
        self.jobs = JobManager()
        app = Flask("provisioner.daemon")
        jsonlimits.install(app)
        token = ensure_api_token(state_dir)
        register_api(app, self.operations, self.jobs, token)
        try:
            self._server = create_server(app, host=host, port=port, threads=8, ident=None)
        except OSError as exc:
            raise ProvisionerError(f"API: cannot listen on {host}:{port}: {exc}") from exc
        self.url = f"http://{host}:{self._server.effective_port}"
        self._thread: threading.Thread | None = None
        self.ui_url: str | None = None
        self._streams = Streams()
        self._ui_server: Any = None
        self._ui_thread: threading.Thread | None = None
        if ui_bind is not None:
            self._listen_ui(token, ui_bind, ui_required)

    def _listen_ui(self, token: str, bind: tuple[str, int], required: bool) -> None:
        """The dashboard's listener, apart from the API's: live pages hold one of its
        threads each (ui.app.STREAMS at most), and it may face the network."""
        ui = create_ui_app(self.operations, self.jobs, token, self.state_dir, self._streams)
        host, port = bind
        try:
            self._ui_server = create_server(
                ui, host=host, port=port, threads=STREAMS + 8, ident=None
            )
        except OSError as exc:
            if required:
                self._server.close()
                raise ProvisionerError(f"dashboard: cannot listen on {host}:{port}: {exc}") from exc
            log.warning("ui: no dashboard: cannot listen on %s:%s (%s); give --ui-bind",
                        host, port, exc)  # fmt: skip
            return
        self.ui_url = f"http://{host}:{self._ui_server.effective_port}"
        if not _loopback(host):
            log.warning(
                "ui: the dashboard on %s speaks plain HTTP: put a TLS proxy in "
                "front of it, or its session cookie crosses the network in clear",
                self.ui_url,
            )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)
        self._thread.start()
        write_daemon_file(self.state_dir, self.url)
        log.info("api: serving on %s", self.url)
        if self._ui_server is not None:
            self._ui_thread = threading.Thread(target=self._ui_server.run, name="ui", daemon=True)
            self._ui_thread.start()
            log.info("ui: dashboard on %s", self.ui_url)
        if self.member is not None:
            self.servers.register(self.member.name, self.member.networks, self.url)
            self._watch_once()
            threading.Thread(target=self._watch, name="heartbeat", daemon=True).start()
            return
        busy = [r.name for r in self.store.all() if r.state.is_busy and r.state.value != "active"]
        if busy:
            log.info("daemon: resuming %s", ", ".join(busy))
            self.jobs.submit("resume", busy, lambda on: self.operations.resume_all(on))

    # ---- several instances: heartbeat and takeover -------------------------------------
    def _watch(self) -> None:
        assert self.member is not None
        while not self._stop.wait(self.member.heartbeat):
            try:
                if not self.servers.heartbeat(self.member.name):  # its row went missing
                    self.servers.register(
                        self.member.name, self.member.networks, self.url, starting=False
                    )
                self._watch_once()
            except Exception:  # the database away for a moment: try again next beat
                log.exception("server %s: heartbeat or takeover scan failed", self.member.name)

    def _watch_once(self) -> None:
        """Take over what dead partners left on our networks; report unserved networks."""
        assert self.member is not None
        found = survey(self.store, self.sites.current(), self.servers, self.member.networks)
        if found.unserved != self._last_unserved:
            for network, nodes in sorted(found.unserved.items()):
                log.warning(
                    "network %s: no live boot server; in flight there: %s",
                    network,
                    ", ".join(sorted(nodes)),
                )
            self._last_unserved = found.unserved
        with self._taking_lock:
            names = [n for n in found.to_take if n not in self._taking]
            self._taking.update(names)
        if not names:
            return
        log.info("server %s: taking over %s", self.member.name, ", ".join(names))

        def work(on_result: Callable[[NodeResult], None]) -> list[NodeResult]:
            try:
                return self.operations.resume(names, on_result)
            finally:
                with self._taking_lock:
                    self._taking.difference_update(names)

        self.jobs.submit("takeover", names, work)

    def stop(self) -> None:
        self._stop.set()
        if self.member is not None:
            self.servers.stop(self.member.name)
        remove_daemon_file(self.state_dir)
        self._streams.stop()  # the dashboard's live streams end first
        self._server.close()
        if self._ui_server is not None:
            self._ui_server.close()
        for thread in (self._thread, self._ui_thread):
            if thread is not None:
                thread.join(timeout=10)
        self.store.close()


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"

"""The pipeline as a service inside `provisioner serve`.

It owns the operations (one job per request), serves the admin REST API on a
loopback address by default (waitress, a production WSGI server, in this
process so jobs and API share memory), the web dashboard on its own listener
(loopback by default too, ``--ui-bind`` to expose it; ui/), publishes where it
listens for the CLI,
and on start resumes every node a previous daemon left in flight (kill -9
included): the nodes' recorded steps (or hooks) say where to continue. The
hooks run here too, in this process, never in a web worker.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
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
from provisioner.state.store import Store

log = logging.getLogger(__name__)


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
    ) -> None:
        self.sites, self.state_dir = sites, state_dir
        self.store = Store.open(state_dir, db_url)
        self.operations = build_operations(
            self.store, sites.current, sites.path, state_dir, actor="daemon"
        )
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
        busy = [r.name for r in self.store.all() if r.state.is_busy and r.state.value != "active"]
        if busy:
            log.info("daemon: resuming %s", ", ".join(busy))
            self.jobs.submit("resume", busy, lambda on: self.operations.resume_all(on))

    def stop(self) -> None:
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

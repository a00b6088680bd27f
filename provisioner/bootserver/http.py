"""The HTTP side: the Flask app under gunicorn, in its own process.

Why a separate process: gunicorn pre-forks its workers, and threads started
before a fork (TFTP, the dnsmasq supervisor) do not exist in the children, and
forking a threaded process can leave locks held. So ``provisioner serve`` keeps
DHCP and TFTP in its own process and starts this module as a child, handing it
the already-bound listening socket (``fd://N``), so the port is known (even
port 0) before any worker runs. Workers are gthread: a slow download holds one
thread, not the whole worker; files go out with sendfile.

site.yaml is parsed once, here in the gunicorn master before it forks: the
workers inherit the parsed site (its node index and the secrets the routes use
already resolved) and the deploy token key, so starting N workers is not N
parses. Only what cannot cross a fork is made in each worker: its store
connections. Nothing here starts a thread before the fork (SiteSource holds a
lock, never a thread). After an edit of site.yaml each worker's SiteSource
reloads on its next request (the serve process follows it for DHCP as well).
Started again by serve while site.yaml is broken, it starts from serve's
snapshot of its last good site instead of refusing to start.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import logging.handlers
import queue
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from provisioner.bootserver.app import create_app
from provisioner.bootserver.context import ServerContext
from provisioner.errors import SecretError
from provisioner.inventory.source import SiteSource
from provisioner.settings import StateDir
from provisioner.state.privacy import PrivateLogHandler
from provisioner.state.store import Store
from provisioner.state.tokens import DeployTokens

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True)
class Preloaded:
    """What the workers share, made in the master before the fork."""

    sites: SiteSource
    tokens: DeployTokens

    @classmethod
    def load(cls, site_path: Path, state_dir: Path) -> Preloaded:
        layout = StateDir(state_dir)
        sites = SiteSource.open(site_path, layout.last_good_site, layout.site_cache)
        site = sites.current()
        with contextlib.suppress(SecretError):  # a kickstart request reports it, not the start
            site.secret(site.defaults.root_password_hash, "defaults: root_password_hash")
        return cls(sites, DeployTokens.from_state_dir(state_dir))


def build_context(
    shared: Preloaded,
    state_dir: Path,
    db_url: str | None,
    boot_files_dir: Path,
    networks: frozenset[str] | None = None,
) -> ServerContext:
    """A worker's context: the shared site and tokens, its own store connections."""
    return ServerContext(
        sites=shared.sites,
        store=Store.open(state_dir, db_url),
        tokens=shared.tokens,
        boot_files_dir=boot_files_dir,
        images_dir=StateDir(state_dir).images,
        networks=networks,
        state_dir=state_dir,
    )


class GunicornServer(BaseApplication):
    """gunicorn run from code: options passed in, the site parsed before the fork,
    the app (with its store) built in each worker."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.shared = Preloaded.load(Path(args.site), Path(args.state_dir))
        super().__init__()

    def load_config(self) -> None:
        a = self.args
        options: dict[str, Any] = {
            "bind": [f"fd://{a.fd}"],
            "worker_class": "gthread",
            "workers": a.workers,
            "threads": a.threads,
            "timeout": 120,
            # a worker's last boot events are written as it exits (bootevents.py)
            "graceful_timeout": 30,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": a.log_level.lower(),
            "proc_name": "provisioner-http",
            "control_socket_disable": True,
        }
        # no "sendfile" key: gunicorn reads ANY value of that setting, True included,
        # as --no-sendfile; left unset, sendfile is on
        for key, value in options.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self) -> Flask:
        a = self.args
        _setup_logging(a.log_level, a.log_file)
        networks = frozenset(a.networks.split(",")) if a.networks else None
        ctx = build_context(self.shared, Path(a.state_dir), a.db_url, Path(a.boot_files), networks)
        return create_app(ctx)


def _setup_logging(level: str, log_file: str | None) -> None:
    """Request threads only queue their records; one thread per worker writes them.

    With the stream and file handlers on the request threads, 50 clients spent a
    third of their time waiting on those handlers' locks. Runs in each worker
    (after the fork: the listener's thread would not survive it)."""
    root = logging.getLogger()
    if root.handlers:
        return
    root.setLevel(level)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file:
        handlers.append(PrivateLogHandler(log_file))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, *handlers, respect_handler_level=True)
    listener.start()
    atexit.register(listener.stop)  # before the event writer registers: stops after it
    root.addHandler(logging.handlers.QueueHandler(records))


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="provisioner-http")
    p.add_argument("--fd", type=int, required=True, help="listening socket inherited")
    p.add_argument("--site", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--db-url")
    p.add_argument("--networks", help="the provisioning networks answered (default: all)")
    p.add_argument("--boot-files", required=True)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--threads", type=int, default=32)
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--log-file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    GunicornServer(args).run()


if __name__ == "__main__":
    main()

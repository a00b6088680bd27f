"""A site inventory that follows edits of site.yaml while a server runs.

``current()`` re-reads the file when its modification time or size changed.
An edit that does not validate is logged with its problems and ignored: the
last good inventory stays in force, so a typo never takes nodes offline. The
file is read by the same bounded loader as ``validate`` (regular files only,
size, depth and alias limits: inventory/yamlload.py), so a FIFO, a device or a
hostile file put in its place is refused at once, never waited on.

A process that starts while site.yaml is broken (serve's HTTP side, restarted
after it died) would have no last good inventory of its own: ``open()`` then
takes the snapshot the running server keeps of its own (``write_snapshot``:
the validated site as JSON, secret references but never secrets).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from provisioner.errors import ConfigError, InventoryInvalid
from provisioner.inventory import Site, load_site
from provisioner.inventory.loader import parse_site
from provisioner.inventory.yamlload import read_text_file

log = logging.getLogger(__name__)


def _log_refusal(path: Path, exc: ConfigError) -> None:
    """One line per problem, naming the file and the node/section and field."""
    if isinstance(exc, InventoryInvalid):
        for problem in exc.problems:
            level = logging.ERROR if problem.severity == "error" else logging.WARNING
            log.log(level, "site %s: %s", path, problem)
        log.error("site %s: edit ignored, keeping the last good inventory", path)
    else:
        log.error("%s; edit ignored, keeping the last good inventory", exc)


def write_snapshot(site: Site, path: Path) -> None:
    """``site`` as JSON at ``path`` (mode 0600, replaced atomically), for ``open()``."""
    data = site.model_dump_json(exclude_none=True)  # pydantic's own encoder: 10x json.dump
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(data)
    os.replace(tmp, path)


def read_snapshot(path: Path, site_path: Path) -> Site:
    """The site a snapshot holds, validated again, its relative paths taken from
    ``site_path``'s folder as the original's were."""
    try:
        raw = json.loads(read_text_file(path))
    except ValueError as exc:
        raise ConfigError(f"{path}: not a site snapshot: {exc}") from None
    site, problems = parse_site(raw, site_path)
    if site is None or any(p.severity == "error" for p in problems):
        raise InventoryInvalid(str(path), problems)
    return site


class SiteSource:
    def __init__(self, path: Path, site: Site | None = None, cache_dir: Path | None = None) -> None:
        """``cache_dir``: the state dir's site cache (inventory/sitecache.py), so the
        processes of one server (serve, its HTTP master) parse a big site once."""
        self.path = path
        self.cache_dir = cache_dir
        self._lock = threading.Lock()
        self._site = site if site is not None else load_site(path, cache_dir)
        self._stamp = self._read_stamp()
        self.generation = 0  # bumped on each successful reload

    @classmethod
    def open(
        cls, path: Path, snapshot: Path | None = None, cache_dir: Path | None = None
    ) -> SiteSource:
        """Follow ``path``; if it is broken right now, start from ``snapshot`` (the last
        good site of the server this process belongs to) instead of failing."""
        try:
            return cls(path, cache_dir=cache_dir)
        except ConfigError as exc:
            if snapshot is None or not snapshot.is_file():
                raise
            _log_refusal(path, exc)
        site = read_snapshot(snapshot, path)
        log.warning(
            "site %s: starting with the last good inventory of the running server (%d nodes)",
            path,
            len(site.nodes),
        )
        return cls(path, site, cache_dir)

    def _read_stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def current(self) -> Site:
        """The site as of the file's last good edit.

        The thread that notices an edit reloads it; threads arriving meanwhile wait for
        that reload (the stamp is recorded only once it is done), so no request is
        answered from the site the edit replaced. Unchanged, this is one stat()."""
        stamp = self._read_stamp()
        if stamp == self._stamp or stamp is None:
            return self._site
        with self._lock:
            if stamp != self._stamp:
                try:
                    site = load_site(self.path, self.cache_dir)
                except ConfigError as exc:
                    _log_refusal(self.path, exc)
                else:
                    self._site = site
                    self.generation += 1
                    log.info("site %s reloaded: %d nodes", self.path, len(site.nodes))
                self._stamp = stamp
            return self._site

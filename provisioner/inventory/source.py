"""A site inventory that follows edits of site.yaml while a server runs.

``current()`` re-reads the file when its modification time or size changed.
An edit that does not validate is logged with its problems and ignored: the
last good inventory stays in force, so a typo never takes nodes offline. The
file is read by the same bounded loader as ``validate`` (regular files only,
size, depth and alias limits: inventory/yamlload.py), so a FIFO, a device or a
hostile file put in its place is refused at once, never waited on.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from provisioner.errors import ConfigError, InventoryInvalid
from provisioner.inventory import Site, load_site

log = logging.getLogger(__name__)


class SiteSource:
    def __init__(self, path: Path, site: Site | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._site = site if site is not None else load_site(path)
        self._stamp = self._read_stamp()
        self.generation = 0  # bumped on each successful reload

    def _read_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
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
                    site = load_site(self.path)
                except InventoryInvalid as exc:
                    for problem in exc.problems:  # one line each, naming node/section and field
                        level = logging.ERROR if problem.severity == "error" else logging.WARNING
                        log.log(level, "site %s: %s", self.path, problem)
                    log.error("site %s: edit ignored, keeping the last good inventory", self.path)
                except ConfigError as exc:
                    log.error("%s; edit ignored, keeping the last good inventory", exc)
                else:
                    self._site = site
                    self.generation += 1
                    log.info("site %s reloaded: %d nodes", self.path, len(site.nodes))
                self._stamp = stamp
            return self._site

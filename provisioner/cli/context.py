"""What every command shares: settings, the site (loaded once), the store."""

from __future__ import annotations

import getpass
import logging
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provisioner.settings import Settings

if TYPE_CHECKING:  # imported where used: `provisioner --help` should not pay for them
    from provisioner.inventory import Site
    from provisioner.state.store import Store

_last_log_path: Path | None = None


class App:
    def __init__(self, settings: Settings, verbose: int = 0) -> None:
        self.settings = settings
        self.verbose = verbose
        self._site: Site | None = None
        self._store: Store | None = None
        self._logging_ready = False
        self.actor = f"cli:{os.environ.get('SUDO_USER') or getpass.getuser()}"

    def override(self, **changes: Any) -> None:
        """A global option given after the subcommand: replaces what the group set.

        Only before anything used the settings (click parses a command's options
        before running it), so nothing was opened with the old ones."""
        if self._site is not None or self._store is not None or self._logging_ready:
            raise RuntimeError("global options must be applied before the command runs")
        if "verbose" in changes:
            self.verbose += int(changes.pop("verbose"))
        self.settings = replace(self.settings, **changes)

    def setup_logging(self) -> None:
        """Log to stderr by verbosity and, at INFO, to the state dir's log file."""
        global _last_log_path
        if self._logging_ready:
            return
        self._logging_ready = True
        root = logging.getLogger()
        root.setLevel(logging.DEBUG if self.verbose > 1 else logging.INFO)
        fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        stderr = logging.StreamHandler()
        stderr.setLevel(
            logging.DEBUG if self.verbose > 1 else logging.INFO if self.verbose else logging.WARNING
        )
        stderr.setFormatter(fmt)
        root.addHandler(stderr)
        from provisioner.state.privacy import PrivateLogHandler

        try:
            self.settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            handler: logging.Handler = PrivateLogHandler(self.settings.log_path)
        except OSError:
            return
        handler.setFormatter(fmt)
        handler.setLevel(logging.DEBUG if self.verbose > 1 else logging.INFO)
        root.addHandler(handler)
        _last_log_path = self.settings.log_path

    def site(self) -> Site:
        if self._site is None:
            from provisioner.inventory import load_site

            self._site = load_site(self.settings.site_path, self.site_cache_dir())
        return self._site

    def site_cache_dir(self) -> Path | None:
        """The state dir's site cache, when the state dir exists (a command that only
        reads the site never creates the state dir for it)."""
        return self.settings.state.site_cache if self.settings.state_dir.is_dir() else None

    def reload_site(self) -> None:
        """Read site.yaml again on next use (after a command edited it)."""
        self._site = None

    def store(self) -> Store:
        if self._store is None:
            self.setup_logging()
            from provisioner.state.store import Store

            self._store = Store.open(self.settings.state_dir, self.settings.db_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    @staticmethod
    def log_traceback(text: str) -> str:
        """Write an internal error's traceback to the log; returns where it went."""
        path = _last_log_path
        if path is None:
            fd, name = tempfile.mkstemp(prefix="provisioner-crash-", suffix=".log")
            os.close(fd)
            path = Path(name)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(text)
        return str(path)

"""The state directory is private to the provisioner's user.

It holds the node database, the log (boot tokens' uses, node names and
addresses), the deploy-token key, the API token and the bundles (site secrets
rendered into files). A package or an operator often creates the folder
beforehand with 0755 and files then appear 0644 by the default umask, so
``make_private`` fixes the whole tree when a server starts (folders 0700, files
0600 or 0700 if executable), and ``serve`` runs with umask 077 so nothing it
writes afterwards is readable by anyone else. The log file is opened with 0600
whoever creates it first.
"""

from __future__ import annotations

import io
import logging.handlers
import os
import stat
from pathlib import Path

from provisioner.settings import StateDir

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077


def _private_mode(mode: int) -> int:
    if stat.S_ISDIR(mode):
        return 0o700
    return 0o700 if mode & 0o100 else 0o600


def make_private(state: StateDir) -> int:
    """Make ``state.root`` and everything under it owner-only; returns how many changed.

    Symlinks are not followed (their modes mean nothing, their targets are not
    ours); the walk stays on the state directory's own file system.
    """
    root = state.root
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    device = root.stat().st_dev
    changed = 0
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if (here / d).lstat().st_dev == device]
        for entry in [here, *(here / f for f in files)]:
            info = entry.lstat()
            if stat.S_ISLNK(info.st_mode) or not (
                stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)
            ):
                continue
            wanted = _private_mode(info.st_mode)
            if stat.S_IMODE(info.st_mode) != wanted:
                os.chmod(entry, wanted, follow_symlinks=False)
                changed += 1
    if changed:
        log.info("state: made %d entries under %s private to this user", changed, root)
    return changed


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (the log, the database)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))


class PrivateLogHandler(logging.handlers.WatchedFileHandler):
    """The log file, created 0600, reopened when logrotate moves it away.

    Watched rather than rotating: the serve process and its HTTP children all
    append to the one file, and only an outside rotator (contrib/logrotate)
    can rotate a file several processes write without losing lines.
    """

    def _open(self) -> io.TextIOWrapper:
        private_file(Path(self.baseFilename))
        return super()._open()

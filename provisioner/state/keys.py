"""Secrets the provisioner makes for itself (token keys), kept in the state dir."""

from __future__ import annotations

import os
from pathlib import Path


def create_once(path: Path, content: bytes) -> bytes:
    """Write ``content`` to ``path`` (mode 0600) unless it exists; return what is there."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # created concurrently
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
    return path.read_bytes()

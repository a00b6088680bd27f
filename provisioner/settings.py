"""Run-time settings: where site.yaml and the state live. Passed in, never global."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/provisioner")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "provisioner"


@dataclass(frozen=True)
class Settings:
    site_path: Path
    state_dir: Path
    db_url: str | None = None

    @property
    def log_path(self) -> Path:
        return self.state_dir / "provisioner.log"

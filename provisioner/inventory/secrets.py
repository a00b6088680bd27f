"""Secret references: site.yaml names where a secret lives, never the secret.

A reference is ``{env: VAR}`` or ``{file: path}`` (relative paths are taken
from the folder holding site.yaml). Resolved values are pydantic ``SecretStr``
so they do not show up in reprs, logs or ``status`` output by accident.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from provisioner.errors import SecretError


class SecretRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret reference needs exactly one of 'env' or 'file'")
        return self

    def describe(self) -> str:
        """Where the secret comes from, safe to print."""
        return f"env:{self.env}" if self.env else f"file:{self.file}"

    def path(self, base_dir: Path) -> Path:
        assert self.file is not None
        path = Path(self.file).expanduser()
        return path if path.is_absolute() else base_dir / path

    def problem(self, base_dir: Path) -> str | None:
        """Why this secret cannot be resolved right now, or None."""
        if self.env is not None:
            if not os.environ.get(self.env):
                return f"environment variable {self.env} is not set or empty"
            return None
        path = self.path(base_dir)
        if not path.is_file():
            return f"secret file {path} does not exist"
        if not os.access(path, os.R_OK):
            return f"secret file {path} is not readable"
        if not path.read_text(encoding="utf-8").strip():
            return f"secret file {path} is empty"
        return None

    def loose_permissions(self, base_dir: Path) -> bool:
        if self.file is None:
            return False
        path = self.path(base_dir)
        return path.is_file() and bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))

    def resolve(self, base_dir: Path, owner: str) -> SecretStr:
        """The secret's value. ``owner`` ("node ctl1: bmc.password") names it in errors."""
        why = self.problem(base_dir)
        if why:
            raise SecretError(f"{owner}: {why}")
        if self.env is not None:
            return SecretStr(os.environ[self.env])
        return SecretStr(self.path(base_dir).read_text(encoding="utf-8").strip())

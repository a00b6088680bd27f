"""Secret references: site.yaml names where a secret lives, never the secret.

A reference is ``{env: VAR}`` or ``{file: path}`` (relative paths are taken
from the folder holding site.yaml). ``{file: path, generate: KIND}`` makes the
file on first use when it does not exist yet (mode 0600; KIND is ``password``,
``tsig`` or ``crypt-hash``), as MAAS makes its own secrets at install: the
example site and the lab need no secret in git. Validation never writes one:
a secret still to be generated is fine. Resolved values are pydantic
``SecretStr`` so they do not show up in reprs, logs or ``status`` output by
accident.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from provisioner.errors import SecretError
from provisioner.state.keys import GeneratedKind, create_generated


class SecretRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: str | None = None
    generate: GeneratedKind | None = Field(
        None,
        description="Make the file on first use when it does not exist (mode 0600): "
        "password, tsig (a base64 TSIG key) or crypt-hash (of a random password not kept)",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret reference needs exactly one of 'env' or 'file'")
        if self.generate is not None and self.file is None:
            raise ValueError("'generate' needs 'file': where the generated secret is kept")
        return self

    def describe(self) -> str:
        """Where the secret comes from, safe to print."""
        return f"env:{self.env}" if self.env else f"file:{self.file}"

    def path(self, base_dir: Path) -> Path:
        assert self.file is not None
        path = Path(self.file).expanduser()
        return path if path.is_absolute() else base_dir / path

    def to_generate(self, base_dir: Path) -> bool:
        """A generated secret whose file is not made yet (first use makes it)."""
        return self.generate is not None and not self.path(base_dir).exists()

    def problem(self, base_dir: Path) -> str | None:
        """Why this secret cannot be resolved right now, or None."""
        if self.env is not None:
            if not os.environ.get(self.env):
                return f"environment variable {self.env} is not set or empty"
            return None
        if self.to_generate(base_dir):
            return None
        path = self.path(base_dir)
        if not path.is_file():
            if path.exists():  # a FIFO or a device is never read: it could block or not end
                return f"secret file {path} is not a regular file"
            return f"secret file {path} does not exist"
        if not os.access(path, os.R_OK):
            return f"secret file {path} is not readable"
        try:
            text = _read_secret(path)
        except ValueError as exc:
            return f"secret file {path} {exc}"
        if not text:
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
        if self.to_generate(base_dir):
            assert self.generate is not None
            try:
                return SecretStr(create_generated(self.path(base_dir), self.generate))
            except (OSError, SecretError) as exc:
                raise SecretError(f"{owner}: cannot generate {self.describe()}: {exc}") from exc
        try:
            return SecretStr(_read_secret(self.path(base_dir)))
        except ValueError as exc:  # changed since problem() looked at it
            raise SecretError(f"{owner}: secret file {self.path(base_dir)} {exc}") from None
        except OSError as exc:
            raise SecretError(f"{owner}: cannot read {self.describe()}: {exc.strerror}") from None


#: no secret is longer; a bigger file is a mistake (and is not read into memory)
_SECRET_MAX_BYTES = 64 * 1024


def _read_secret(path: Path) -> str:
    """The stripped text of a secret file; ValueError (safe to print) when it is no secret."""
    # non-blocking and checked after opening: a FIFO swapped in after the is_file() check
    # is refused, never waited on
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("is not a regular file")
        data = handle.read(_SECRET_MAX_BYTES + 1)
    if len(data) > _SECRET_MAX_BYTES:
        raise ValueError(f"is larger than {_SECRET_MAX_BYTES} bytes")
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise ValueError(f"is not UTF-8 text (byte {exc.start})") from None

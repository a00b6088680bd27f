"""Secrets the provisioner makes for itself, written once with mode 0600.

Token keys and the API token live in the state dir; a site's secret reference
may say ``generate: <kind>`` so its file is made on first use (as MAAS makes its
own secrets when it is installed): the example site and the lab work on a
fresh clone without secrets in git, and nobody has to invent a TSIG key.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

from provisioner import programs
from provisioner.errors import SecretError

#: What a generated secret is: a BMC or service password, a TSIG key (base64,
#: 256 bits, for hmac-sha256), or the crypt(3) SHA-512 hash of a random
#: password that is not kept (nobody can log in with it: use ssh_keys).
GeneratedKind = Literal["password", "tsig", "crypt-hash"]


def create_once(path: Path, content: bytes) -> bytes:
    """Write ``content`` to ``path`` (mode 0600) unless it exists; return what is there.

    The file appears complete or not at all (written aside, then hard-linked into
    place, which fails if another process was first), so a concurrent reader
    never sees it empty, and it is never readable by others, not even briefly."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # created concurrently: theirs wins
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    return path.read_bytes()


def crypt_sha512(password: str) -> str:
    """A crypt(3) SHA-512 hash, made by openssl (Python's crypt module is going away)."""
    try:
        done = subprocess.run(
            [programs.path("openssl"), "passwd", "-6", "-stdin"],
            input=password,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SecretError(f"cannot hash a password with openssl: {exc}") from exc
    if done.returncode != 0 or not done.stdout.startswith("$6$"):
        raise SecretError("openssl passwd -6 failed (install openssl)")
    return done.stdout.strip()


def generate(kind: GeneratedKind) -> str:
    """A fresh secret of ``kind``."""
    if kind == "password":
        return secrets.token_urlsafe(15)  # 20 characters: the most an IPMI 2.0 password has
    if kind == "tsig":
        return base64.b64encode(secrets.token_bytes(32)).decode()
    if kind == "crypt-hash":
        return crypt_sha512(secrets.token_urlsafe(18))
    raise SecretError(f"unknown kind of generated secret {kind!r}")


def create_generated(path: Path, kind: GeneratedKind) -> str:
    """The secret in ``path``, generated (mode 0600) when the file does not exist yet."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    return create_once(path, (generate(kind) + "\n").encode()).decode().strip()

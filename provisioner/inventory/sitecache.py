"""A cache of the validated site, keyed by the content of site.yaml.

Parsing and validating a 10,000-node site costs seconds (YAML alone: ~4 s on
libyaml's C parser, ~18 s on PyYAML's pure-Python one); every CLI command and
every server start would pay it. A site that validated without errors is
pickled into the state dir under the SHA-256 of its text, its resolved path
and this code's version, and later loads of the same text unpickle it.

What validation read besides site.yaml is part of the entry: the secret files
and environment variables it referenced (existence, mode, size, mtime; whether
a variable is set; never a value) and the site's ``secrets/`` folder. When any
of these differs, the entry is not used and the site is validated again.
Resolved secret values are dropped before pickling, so the cache holds secret
*references* only, like site.yaml itself. Entries with errors are never
cached: problems are always reported by the full loader, with their lines.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from provisioner import __version__
from provisioner.inventory.models import Site
from provisioner.inventory.problems import Problem
from provisioner.inventory.secrets import SecretRef

log = logging.getLogger(__name__)

#: entries kept per cache folder (older ones are removed when one is written)
KEEP = 4


@cache
def _code_stamp() -> str:
    """The code's identity (every module of the package: about 1 ms of stat calls),
    so a pickle made by other code, an edited checkout included, is never loaded."""
    digest = hashlib.sha256(f"{__version__} {sys.version}".encode())
    package = Path(__file__).parent.parent
    for path in sorted(package.rglob("*.py")):
        st = path.stat()
        digest.update(f"{path} {st.st_size} {st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def key_for(text: str, path: Path) -> str:
    digest = hashlib.sha256(_code_stamp().encode())
    digest.update(str(path.resolve()).encode() + b"\0")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _secret_refs(value: Any, found: dict[tuple[str | None, str | None], SecretRef]) -> None:
    """Every SecretRef in a model tree (nodes share few distinct references)."""
    if isinstance(value, SecretRef):
        found.setdefault((value.file, value.env), value)
    elif isinstance(value, BaseModel):
        for child in value.__dict__.values():
            _secret_refs(child, found)
    elif isinstance(value, list | tuple):
        for child in value:
            _secret_refs(child, found)
    elif isinstance(value, dict):
        for child in value.values():
            _secret_refs(child, found)


def _inputs(site: Site) -> tuple[list[str], list[str]]:
    """The files and environment variables validation read besides site.yaml."""
    refs: dict[tuple[str | None, str | None], SecretRef] = {}
    _secret_refs(site, refs)
    base = site.base_dir
    files = {str(ref.path(base)) for ref in refs.values() if ref.file is not None}
    secrets_dir = base / "secrets"
    files.add(str(secrets_dir))
    if secrets_dir.is_dir():
        files.update(str(p) for p in secrets_dir.rglob("*"))
    envs = sorted({ref.env for ref in refs.values() if ref.env is not None})
    return sorted(files), envs


def _fingerprint(files: list[str], envs: list[str], secrets_dir: Path) -> list[Any]:
    stamps: list[Any] = []
    for name in files:
        try:
            st = os.stat(name)
        except OSError:
            stamps.append(None)
            continue
        readable = os.access(name, os.R_OK)
        stamps.append((st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino, readable))
    listing = sorted(str(p) for p in secrets_dir.rglob("*")) if secrets_dir.is_dir() else []
    stamps.append(listing)  # a file added to secrets/ since
    stamps.extend(bool(os.environ.get(env)) for env in envs)
    return stamps


def _private(path: Path, st: os.stat_result | None = None) -> bool:
    """Ours and writable by nobody else: unpickling runs what the file says."""
    st = st or path.stat()
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def get(cache_dir: Path, key: str, path: Path) -> tuple[Site, list[Problem]] | None:
    """The cached (site, warnings) for ``key``, if its other inputs are unchanged."""
    entry = cache_dir / f"site-{key}.pickle"
    try:
        with entry.open("rb") as handle:
            if not (_private(cache_dir) and _private(entry, os.fstat(handle.fileno()))):
                log.warning("site cache %s ignored: not private to this user", entry)
                return None
            files, envs, stamps, blob = pickle.load(handle)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a truncated or foreign file: validate again, replace it
        log.debug("site cache %s unusable: %s", entry, exc)
        return None
    if _fingerprint(files, envs, path.resolve().parent / "secrets") != stamps:
        return None
    site, problems = pickle.loads(blob)
    site._base_dir = path.resolve().parent
    return site, problems


def put(cache_dir: Path, key: str, site: Site, problems: list[Problem]) -> None:
    """Store a site that validated (no errors); the state dir's mode keeps it private."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        resolved = site._secrets
        site._secrets = {}  # resolved values never reach the disk
        try:
            blob = pickle.dumps((site, problems), protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            site._secrets = resolved
        files, envs = _inputs(site)
        stamps = _fingerprint(files, envs, site.base_dir / "secrets")
        entry = cache_dir / f"site-{key}.pickle"
        tmp = entry.with_name(f".{entry.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            pickle.dump((files, envs, stamps, blob), handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, entry)
        entries = sorted(cache_dir.glob("site-*.pickle"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-KEEP]:
            old.unlink(missing_ok=True)
    except OSError as exc:  # a read-only state dir: the cache is only an optimisation
        log.debug("site cache not written in %s: %s", cache_dir, exc)

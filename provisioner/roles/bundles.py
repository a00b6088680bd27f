"""Where generated bundles live (under the state dir) and how a node may pull its own.

``<state_dir>/bundles/<node>/`` holds the files. When a node's install completes,
the SHA-256 of its (now spent) deploy token is kept beside the bundles, so the
node can still fetch *its own* bundle on first boot with that token, until the
node is deployed again or ``max_age`` passes. The token itself is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from provisioner.errors import BundleError
from provisioner.roles.common import Bundle
from provisioner.settings import StateDir

PULL_MAX_AGE_S = 24 * 3600
#: the one folder of a bundle that may hold a secret a daemon reads only from its config
#: (Neutron's VRRP password): written 0600 in a 0700 folder
SECRETS_DIR = "secrets"


class BundleStore:
    def __init__(self, state_dir: Path, pull_max_age_s: float = PULL_MAX_AGE_S) -> None:
        self.root = StateDir(state_dir).bundles
        self._tokens = StateDir(state_dir).bundle_tokens
        self.pull_max_age_s = pull_max_age_s

    def path(self, node: str) -> Path:
        if not node or "/" in node or node.startswith("."):
            raise BundleError(f"node {node!r}: not a node name")
        return self.root / node

    def exists(self, node: str) -> bool:
        return (self.path(node) / "MANIFEST").is_file()

    def write(self, node: str, files: Bundle) -> Path:
        """Replace the node's bundle atomically (a reader never sees half of it)."""
        target = self.path(node)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        staging = Path(tempfile.mkdtemp(prefix=f".{node}-", dir=self.root))
        for rel, text in sorted(files.items()):
            rel_path = Path(rel)
            if rel_path.is_absolute() or ".." in rel_path.parts:
                raise BundleError(f"node {node}: bundle path {rel} escapes the bundle")
            dest = staging / rel_path
            dest.parent.mkdir(parents=True, exist_ok=True)
            if rel_path.parts[0] == SECRETS_DIR:
                dest.parent.chmod(0o700)
                dest.touch(mode=0o600)
            dest.write_text(text)
            dest.chmod(0o700 if rel.endswith(".sh") else 0o600)  # site secrets inside
        (staging / "MANIFEST").write_text("".join(f"{rel}\n" for rel in sorted(files)))
        (staging / "MANIFEST").chmod(0o600)
        old = None
        if target.exists():
            old = target.with_name(f".{node}-old-{os.getpid()}-{time.monotonic_ns()}")
            target.rename(old)
        staging.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return target

    def current(self, node: str) -> bool:
        """Whether the node's bundle was generated for its latest install: written after
        the install callback allowed its pull (the hooks run after that), so a
        reprovisioned node's first boot never applies the previous deployment's bundle."""
        manifest = self.path(node) / "MANIFEST"
        allowed = self._tokens / f"{self.path(node).name}.sha256"
        try:
            return manifest.stat().st_mtime >= allowed.stat().st_mtime
        except OSError:
            return False

    def files(self, node: str) -> list[str]:
        manifest = self.path(node) / "MANIFEST"
        if not manifest.is_file():
            raise BundleError(f"node {node}: no bundle generated yet")
        return [line for line in manifest.read_text().splitlines() if line]

    def tarball(self, node: str) -> bytes:
        """The node's bundle as a gzipped tar (paths relative to the bundle root)."""
        base = self.path(node)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for rel in ["MANIFEST", *self.files(node)]:
                tar.add(base / rel, arcname=rel, recursive=False)
        return buf.getvalue()

    # ---- pull tokens ------------------------------------------------------------
    def allow_pull(self, node: str, token: str) -> None:
        """Let ``token`` (the node's just-spent deploy token) fetch this node's bundle."""
        self._tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
        digest = hashlib.sha256(token.encode()).hexdigest()
        path = self._tokens / f"{self.path(node).name}.sha256"
        # a temp file of its own (mode 0600): two racing callbacks must not share one
        fd, tmp = tempfile.mkstemp(dir=self._tokens, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as fh:
            fh.write(digest)
        os.replace(tmp, path)

    def may_pull(self, node: str, token: str) -> bool:
        digest = hashlib.sha256(token.encode()).hexdigest().encode()
        path = self._tokens / f"{self.path(node).name}.sha256"
        try:
            expected = path.read_bytes().strip()
            age = time.time() - path.stat().st_mtime
        except OSError:
            hmac.compare_digest(digest, b"0" * 64)
            return False
        return hmac.compare_digest(digest, expected) and age <= self.pull_max_age_s

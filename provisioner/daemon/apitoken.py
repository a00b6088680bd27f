"""The admin token of the daemon's REST API (a file in the state dir, mode 0600).

Whoever can read the state directory may drive the daemon; nobody else can.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from pathlib import Path

from provisioner.settings import StateDir
from provisioner.state.keys import create_once


def ensure_api_token(state_dir: Path) -> str:
    made = secrets.token_urlsafe(32).encode()
    return create_once(StateDir(state_dir).api_token, made).decode().strip()


def read_api_token(state_dir: Path) -> str | None:
    try:
        return StateDir(state_dir).api_token.read_text().strip() or None
    except OSError:
        return None


def token_matches(expected: str, header: str | None) -> bool:
    presented = (header or "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(presented.encode(), expected.encode())


def write_daemon_file(state_dir: Path, url: str) -> None:
    """Tell CLI commands where the running daemon listens."""
    path = StateDir(state_dir).daemon_file
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    tmp.chmod(0o600)
    tmp.replace(path)


def remove_daemon_file(state_dir: Path) -> None:
    StateDir(state_dir).daemon_file.unlink(missing_ok=True)


def read_daemon_file(state_dir: Path) -> dict[str, object] | None:
    try:
        data = json.loads(StateDir(state_dir).daemon_file.read_text())
    except (OSError, ValueError):
        return None
    pid = data.get("pid")
    if not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return data if isinstance(data, dict) else None

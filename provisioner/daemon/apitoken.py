"""The admin token of the daemon's REST API (a file in the state dir, mode 0600).

Whoever can read the state directory may drive the daemon; nobody else can.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from pathlib import Path

from provisioner.state.keys import create_once

TOKEN_FILE = "api.token"
DAEMON_FILE = "daemon.json"


def ensure_api_token(state_dir: Path) -> str:
    made = secrets.token_urlsafe(32).encode()
    return create_once(state_dir / TOKEN_FILE, made).decode().strip()


def read_api_token(state_dir: Path) -> str | None:
    try:
        return (state_dir / TOKEN_FILE).read_text().strip() or None
    except OSError:
        return None


def token_matches(expected: str, header: str | None) -> bool:
    presented = (header or "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(presented.encode(), expected.encode())


def write_daemon_file(state_dir: Path, url: str) -> None:
    """Tell CLI commands where the running daemon listens."""
    tmp = state_dir / (DAEMON_FILE + ".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    tmp.replace(state_dir / DAEMON_FILE)


def remove_daemon_file(state_dir: Path) -> None:
    (state_dir / DAEMON_FILE).unlink(missing_ok=True)


def read_daemon_file(state_dir: Path) -> dict[str, object] | None:
    try:
        data = json.loads((state_dir / DAEMON_FILE).read_text())
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

"""The CLI's side of the REST API: talk to a running `provisioner serve`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from provisioner.daemon.apitoken import read_api_token, read_daemon_file
from provisioner.errors import EXIT_CONFIG, EXIT_CONFLICT, EXIT_NOT_FOUND, DaemonError

_EXIT_OF_STATUS = {400: EXIT_CONFIG, 404: EXIT_NOT_FOUND, 409: EXIT_CONFLICT}


class DaemonClient:
    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"DaemonClient({self.url!r})"

    @classmethod
    def discover(cls, state_dir: Path) -> DaemonClient | None:
        """The running daemon of this state dir, or None (then work in-process)."""
        info = read_daemon_file(state_dir)
        token = read_api_token(state_dir)
        if info is None or token is None or not isinstance(info.get("url"), str):
            return None
        client = cls(str(info["url"]), token, timeout=5.0)
        try:
            client.request("GET", "/api/v1/nodes")
        except DaemonError:
            return None
        client.timeout = 30.0
        return client

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("error")
            except (ValueError, AttributeError):
                detail = None
            error = DaemonError(detail or f"daemon answered HTTP {exc.code} to {method} {path}")
            # the same exit code as the command would have in-process
            error.exit_code = _EXIT_OF_STATUS.get(exc.code, error.exit_code)
            raise error from exc
        except (urllib.error.URLError, OSError) as exc:
            raise DaemonError(f"daemon at {self.url} unreachable: {exc}") from exc

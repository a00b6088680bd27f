"""What installer scripts meet in the tests: a real HTTP server on loopback recording
the callbacks they POST, and a sysfs tree describing the disks of a machine."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Callback:
    path: str
    authorization: str | None
    content_type: str | None
    body: dict[str, Any]


@dataclass
class Recorder:
    base_url: str
    calls: list[Callback] = field(default_factory=list)


@contextmanager
def callback_server() -> Iterator[Recorder]:
    recorder = Recorder("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            recorder.calls.append(
                Callback(
                    self.path,
                    self.headers.get("Authorization"),
                    self.headers.get("Content-Type"),
                    json.loads(raw),
                )
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


GB = 10**9


def make_sysfs(root: Path, disks: dict[str, tuple[int, int]]) -> Path:
    """disks: name -> (bytes, removable)."""
    for name, (size, removable) in disks.items():
        block = root / "block" / name
        block.mkdir(parents=True)
        (block / "size").write_text(f"{size // 512}\n")
        (block / "removable").write_text(f"{removable}\n")
        (block / "ro").write_text("0\n")
    return root

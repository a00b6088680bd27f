"""The dashboard's listener inside the daemon: its port, and stopping with pages open."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from provisioner.daemon.service import DaemonService
from provisioner.errors import ProvisionerError
from provisioner.inventory.source import SiteSource
from provisioner.settings import StateDir

pytestmark = pytest.mark.functional


def taken_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def test_a_taken_default_port_leaves_serve_without_a_dashboard(
    site_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sock, port = taken_port()
    with sock:
        sites = SiteSource(site_dir / "site.yaml")
        with pytest.raises(ProvisionerError, match=f"dashboard: cannot listen on 127.0.0.1:{port}"):
            DaemonService(sites, tmp_path / "a", None, "127.0.0.1", 0, ("127.0.0.1", port))
        with caplog.at_level(logging.WARNING):
            service = DaemonService(
                sites, tmp_path / "b", None, "127.0.0.1", 0, ("127.0.0.1", port), ui_required=False
            )
        assert service.ui_url is None and "no dashboard" in caplog.text
        service.start()
        service.stop()


def test_serve_stops_at_once_with_a_live_page_open(site_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    service = DaemonService(
        SiteSource(site_dir / "site.yaml"), state, None, "127.0.0.1", 0, ("127.0.0.1", 0)
    )
    service.start()
    assert service.ui_url
    browser = requests.Session()
    form = browser.get(f"{service.ui_url}/login", timeout=10).text
    nonce = re.search(r'name="nonce" value="([^"]+)"', form)
    assert nonce
    token = StateDir(state).api_token.read_text().strip()
    browser.post(f"{service.ui_url}/login", data={"nonce": nonce[1], "token": token}, timeout=10)
    got: list[bytes] = []

    def listen() -> None:
        with browser.get(f"{service.ui_url}/events", stream=True, timeout=30) as resp:
            assert resp.status_code == 200
            got.extend(resp.iter_lines())

    reader = threading.Thread(target=listen)
    reader.start()
    deadline = time.monotonic() + 10
    while not any(line.startswith(b"data: ") for line in got) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any(b'"name": "ctl1"' in line for line in got)  # every node's row, live
    started = time.monotonic()
    service.stop()
    assert time.monotonic() - started < 3  # it waited 10 s for the open stream before
    reader.join(timeout=10)
    assert not reader.is_alive()

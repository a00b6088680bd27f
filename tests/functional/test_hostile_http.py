"""The HTTP servers under hostile requests, sent with curl (issue 18).

The boot server's app and the daemon's admin API run under real WSGI servers
on loopback; curl sends what an attacker on the provisioning network would.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from provisioner.bootserver.app import create_app
from provisioner.bootserver.context import ServerContext
from provisioner.daemon.service import DaemonService
from provisioner.inventory.source import SiteSource
from provisioner.state.store import Store
from provisioner.state.tokens import DeployTokens

pytestmark = pytest.mark.functional

NESTED = b"[" * 100_000 + b"]" * 100_000
NESTED_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000


def curl(url: str, *args: str, data: bytes | None = None) -> tuple[int, bytes]:
    """(HTTP status, body) of one request."""
    argv = ["curl", "-sS", "--max-time", "30", "-o", "-", "-w", "\n%{http_code}", *args]
    if data is not None:
        argv += ["--data-binary", "@-"]
    done = subprocess.run([*argv, url], input=data, capture_output=True, timeout=60, check=True)
    body, _, status = done.stdout.rpartition(b"\n")
    return int(status), body


@pytest.fixture
def boot_server(site_dir: Path, tmp_path: Path) -> Iterator[str]:
    state = tmp_path / "state"
    store = Store.open(state)
    ctx = ServerContext(
        sites=SiteSource(site_dir / "site.yaml"),
        store=store,
        tokens=DeployTokens.from_state_dir(state),
        boot_files_dir=tmp_path / "boot",
    )
    server = make_server("127.0.0.1", 0, create_app(ctx), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        store.close()


@pytest.fixture
def daemon(site_dir: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    state = tmp_path / "daemon-state"
    service = DaemonService(SiteSource(site_dir / "site.yaml"), state, None, "127.0.0.1", 0)
    service.start()
    try:
        yield service.url, (state / "api.token").read_text().strip()
    finally:
        service.stop()


@pytest.mark.parametrize("body", [NESTED, NESTED_OBJECT], ids=["array", "object"])
def test_api_answers_400_to_deeply_nested_json(daemon: tuple[str, str], body: bytes) -> None:
    url, token = daemon
    headers = ["-H", f"Authorization: Bearer {token}", "-H", "Content-Type: application/json"]
    status, answer = curl(f"{url}/api/v1/operations", *headers, data=body)
    assert status == 400, answer
    assert "nested deeper" in json.loads(answer)["error"]
    # and a proper request still gets through to validation
    status, answer = curl(f"{url}/api/v1/operations", *headers, data=b'{"action": "nope"}')
    assert status == 422, answer


def test_api_answers_413_to_an_oversized_body(daemon: tuple[str, str]) -> None:
    url, token = daemon
    body = json.dumps({"action": "provision", "nodes": ["x" * 100] * 20_000}).encode()
    headers = ["-H", f"Authorization: Bearer {token}", "-H", "Content-Type: application/json"]
    status, answer = curl(f"{url}/api/v1/operations", *headers, data=body)
    assert status == 413 and "larger than" in json.loads(answer)["error"], answer


@pytest.mark.parametrize("body", [NESTED, NESTED_OBJECT], ids=["array", "object"])
def test_callback_answers_400_to_deeply_nested_json(boot_server: str, body: bytes) -> None:
    status, answer = curl(
        f"{boot_server}/api/v1/nodes/ctl1/callback", "-H", "Content-Type: application/json",
        data=body,
    )  # fmt: skip
    assert status == 400 and "nested deeper" in json.loads(answer)["error"], answer


def test_callback_answers_413_to_an_oversized_body(boot_server: str) -> None:
    status, answer = curl(
        f"{boot_server}/api/v1/nodes/ctl1/callback", data=b'{"a": "' + b"x" * (2 << 20) + b'"}'
    )
    assert status == 413, answer


def test_brackets_inside_strings_do_not_count(boot_server: str) -> None:
    body = json.dumps({"status": "[" * 10_000}).encode()
    status, answer = curl(f"{boot_server}/api/v1/nodes/ctl1/callback", data=body)
    assert status == 403, answer  # reached the route: no token, refused there


@pytest.fixture
def loopback_site(site_dir: Path) -> Path:
    """The example site moved onto 127.0.2.0/24, so curl can speak as any node."""
    path = site_dir / "site.yaml"
    text = path.read_text().replace("192.0.2.", "127.0.2.")
    path.write_text(text.replace("2.0.192.in-addr.arpa", "2.0.127.in-addr.arpa"))
    return site_dir


def test_install_script_only_to_the_nodes_own_address(
    loopback_site: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    store = Store.open(state)
    store.enroll("ctl1")
    store.start_build_mode("ctl1")
    tokens = DeployTokens.from_state_dir(state)
    token = tokens.token_for(store.get("ctl1"))
    assert token
    ctx = ServerContext(
        sites=SiteSource(loopback_site / "site.yaml"),
        store=store,
        tokens=tokens,
        boot_files_dir=tmp_path / "boot",
    )
    server = make_server("127.0.0.1", 0, create_app(ctx), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/boot/52:54:00:00:02:0b.ipxe"  # ctl1
    try:
        with caplog.at_level("INFO", logger="provisioner.bootserver.boot_routes"):
            status, body = curl(url, "--interface", "127.0.2.11")  # ctl1's own address
            assert status == 200 and f"token={token}".encode() in body
            for other in ("127.0.2.12", "127.0.0.1"):  # cmp1's address, the host's
                status, body = curl(url, "--interface", other)
                assert status == 403 and token.encode() not in body, body
                assert b"kernel" not in body
        refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 2
        assert "install script refused to client 127.0.2.12" in refusals[0]
        assert "fixed address 127.0.2.11" in refusals[0]
        assert all(token not in r.getMessage() for r in caplog.records)
    finally:
        server.shutdown()
        thread.join(10)
        store.close()


@pytest.mark.parametrize(
    ("header", "status", "part"),
    [
        ("items=0-10", 200, slice(None)),  # unknown unit: ignored (RFC 9110 14.2)
        ("bytes=0-1,5-6", 200, slice(None)),  # several ranges, satisfiable: whole file
        ("bytes=0-99, 4000-", 200, slice(None)),
        ("bytes=0-10", 206, slice(0, 11)),  # one range: as before
        ("bytes=-10", 206, slice(-10, None)),
        ("bytes=9000-", 416, None),  # nothing satisfiable: 416
        ("bytes=9000-9010,9100-", 416, None),
    ],
)
def test_files_range_requests(
    boot_server: str, tmp_path: Path, header: str, status: int, part: slice | None
) -> None:
    kernel = bytes(range(256)) * 20  # 5120 bytes
    (tmp_path / "boot" / "rocky9").mkdir(parents=True)
    (tmp_path / "boot" / "rocky9" / "vmlinuz").write_bytes(kernel)
    got, body = curl(f"{boot_server}/files/rocky9/vmlinuz", "-H", f"Range: {header}")
    assert got == status, body[:200]
    if part is not None:
        assert body == kernel[part]

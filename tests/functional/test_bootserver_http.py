"""The HTTP side of `provisioner serve` as nodes and operators use it: boot
scripts by MAC and build mode, boot events, kernels with Range, no traversal,
health, and a clean stop on SIGTERM."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from bootserver_support import Serve, alive, boot_events, descendants, wait_for

from provisioner import programs
from provisioner.state.store import Store
from provisioner.state.tokens import DeployTokens

pytestmark = pytest.mark.functional

CTL1_MAC = "52:54:00:00:02:0b"  # examples/site.yaml
CTL2_MAC = "52:54:00:00:02:0c"


@dataclass
class Running:
    serve: Serve
    url: str
    state: Path
    boot_files: Path


@pytest.fixture
def running(site_dir: Path) -> Iterator[Running]:
    state = site_dir / "state"
    boot_files = site_dir / "boot-files"
    (boot_files / "rocky9").mkdir(parents=True)
    (boot_files / "rocky9" / "vmlinuz").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    (boot_files / "rocky9" / "initrd.img").write_bytes(b"initrd" * 1000)
    store = Store.open(state)
    for name in ("ctl1", "ctl2"):
        store.enroll(name)
    store.close()
    serve = Serve(
        [],
        site_dir / "site.yaml",
        state,
        "--no-dhcp",
        "--no-tftp",
        "--http-bind=127.0.0.1:0",
        f"--boot-files={boot_files}",
        "--workers=1",
        "--threads=4",
    )
    try:
        serve.wait_log("http: serving on")
        port = re.search(r"http: serving on 127\.0\.0\.1:(\d+)", serve.log())
        assert port
        yield Running(serve, f"http://127.0.0.1:{port.group(1)}", state, boot_files)
    finally:
        serve.stop()


def test_node_not_in_build_mode_boots_local_disk(running: Running) -> None:
    """(serve's logging is queued: a log line follows its reply, so the tests wait for it)"""
    reply = requests.get(f"{running.url}/boot/52-54-00-00-02-0b.ipxe", timeout=10)
    assert reply.status_code == 200
    assert reply.text.startswith("#!ipxe\n")
    assert "exit 1" in reply.text
    assert "kernel" not in reply.text
    wait_for(
        "the boot event",
        lambda: boot_events(running.state, "ctl1") == ["boot script served (local disk)"],
    )
    running.serve.wait_log("boot: node ctl1 (MAC 52:54:00:00:02:0b")


def test_node_in_build_mode_gets_installer_with_its_token(running: Running) -> None:
    store = Store.open(running.state)
    store.start_build_mode("ctl1")
    token = DeployTokens.from_state_dir(running.state).token_for(store.get("ctl1"))
    store.close()
    assert token
    # ctl1 boots with its fixed address 192.0.2.11 (the default): this client is not it
    refused = requests.get(f"{running.url}/boot/{CTL1_MAC}.ipxe", timeout=10)
    assert refused.status_code == 403 and token not in refused.text
    running.serve.wait_log("install script refused to client 127.0.0.1")
    # a site whose nodes boot from another DHCP's pool: any address gets it
    site = running.state.parent / "site.yaml"
    site.write_text(
        site.read_text().replace("\nnetwork:\n", "\nnetwork:\n  boot_addresses: dynamic\n", 1)
    )
    reply = requests.get(f"{running.url}/boot/{CTL1_MAC}.ipxe", timeout=10)
    assert reply.status_code == 200, running.serve.log()[-3000:]
    script = reply.text
    base = "http://192.0.2.2:8080"  # the site's provisioner address, as nodes reach it
    assert f"kernel {base}/files/rocky9/vmlinuz initrd=initrd.img " in script
    assert f"inst.ks={base}/ks/ctl1?token={token}" in script
    assert f"initrd {base}/files/rocky9/initrd.img" in script
    assert script.rstrip().endswith("boot")
    wait_for(
        "the boot event",
        lambda: boot_events(running.state, "ctl1") == ["boot script served (install)"],
    )
    # the token is a secret: never in the server's log (read once the reply's line is in)
    running.serve.wait_log("(MAC 52:54:00:00:02:0b, client 127.0.0.1): boot script served")
    assert token not in running.serve.log()
    # another node, not in build mode, gets no installer and no token
    other = requests.get(f"{running.url}/boot/{CTL2_MAC}.ipxe", timeout=10).text
    assert "kernel" not in other and token not in other


def test_unknown_mac_gets_a_clean_exit_and_nobodys_install(running: Running) -> None:
    store = Store.open(running.state)
    store.start_build_mode("ctl1")
    store.close()
    reply = requests.get(f"{running.url}/boot/52-54-00-99-99-99.ipxe", timeout=10)
    assert reply.status_code == 200
    assert "exit 1" in reply.text
    assert "kernel" not in reply.text and "token" not in reply.text
    running.serve.wait_log("unknown MAC 52:54:00:99:99:99")
    bad = requests.get(f"{running.url}/boot/not-a-mac.ipxe", timeout=10)
    assert bad.status_code == 404


def test_boot_files_with_range_and_no_traversal(running: Running) -> None:
    kernel = (running.boot_files / "rocky9" / "vmlinuz").read_bytes()
    full = requests.get(f"{running.url}/files/rocky9/vmlinuz", timeout=10)
    assert full.status_code == 200 and full.content == kernel
    part = requests.get(
        f"{running.url}/files/rocky9/vmlinuz", headers={"Range": "bytes=1000-1999"}, timeout=10
    )
    assert part.status_code == 206
    assert part.content == kernel[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(kernel)}"
    for path in ("../site.yaml", "..%2fsite.yaml", "%2e%2e/site.yaml", "rocky9/../../site.yaml"):
        done = subprocess.run(
            [
                programs.path("curl"),
                "-s",
                "--path-as-is",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                f"{running.url}/files/{path}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.stdout == "404", path
    assert requests.get(f"{running.url}/files/nothere", timeout=10).status_code == 404


def test_images_with_range_from_the_state_dir(running: Running) -> None:
    """`image build` writes under <state>/images/<key>/; serve publishes it like kernels."""
    folder = running.state / "images" / ("ab" * 12)
    folder.mkdir(parents=True)
    data = bytes(range(256)) * 8192  # 2 MiB
    (folder / "image.tar.zst").write_bytes(data)
    url = f"{running.url}/images/{folder.name}/image.tar.zst"
    full = requests.get(url, timeout=10)
    assert full.status_code == 200 and full.content == data
    part = requests.get(url, headers={"Range": "bytes=4096-8191"}, timeout=10)
    assert part.status_code == 206 and part.content == data[4096:8192]
    assert requests.get(f"{running.url}/images/../site.yaml", timeout=10).status_code == 404
    assert requests.get(f"{running.url}/images/{folder.name}/x", timeout=10).status_code == 404


def test_healthz(running: Running) -> None:
    reply = requests.get(f"{running.url}/healthz", timeout=10)
    assert reply.status_code == 200
    assert reply.json()["status"] == "ok"
    assert reply.json()["nodes"] == 10


def test_sigterm_stops_everything(running: Running) -> None:
    children = descendants(running.serve.proc.pid)
    assert len(children) >= 2  # the gunicorn master and its worker
    assert running.serve.stop() == 0
    wait_for("HTTP processes to exit", lambda: not [p for p in children if alive(p)])
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{running.url}/healthz", timeout=5)

"""A running `provisioner serve` (boot server, its gunicorn workers, the pipeline daemon)
follows site.yaml edits through the same bounded loader as `validate` (issue 18).

An edit that breaks site.yaml (a hostile value, a FIFO in its place, nesting past
the limit, bytes that are not UTF-8) leaves the running site in force: the boot
scripts and the admin API answer from the last good inventory, nothing hangs,
and the log names the file and what is wrong (the node and field for a value).
A good edit afterwards is picked up by every process, the HTTP workers included
(issue 14: no worker keeps serving a stale site).
"""

from __future__ import annotations

import os
import re
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from bootserver_support import Serve, descendants, wait_for

from provisioner.daemon.client import DaemonClient
from provisioner.settings import StateDir

pytestmark = pytest.mark.functional

CTL1_MAC = "52:54:00:00:02:0b"
NEW_MAC = "52:54:00:00:02:15"
NEW_NODE = """  - name: cmp4
    role: compute
    rack: r2
    macs: ["52:54:00:00:02:15"]
    ip: 192.0.2.21
    bmc: {driver: ipmi, address: 127.0.0.1, port: 6240, user: admin, password: {file: secrets/bmc-password, generate: password}}
"""  # noqa: E501 - one node as site.yaml writes it


def _fifo(path: Path) -> None:
    tmp = path.with_name(".site.fifo")
    os.mkfifo(tmp)
    os.replace(tmp, path)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(".site.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def boot_scripts(url: str, mac: str, count: int = 16) -> set[str]:
    """The first comment line of the boot script ``count`` parallel requests get for ``mac``
    (spread over the HTTP workers)."""

    def one(_i: int) -> str:
        reply = requests.get(f"{url}/boot/{mac}.ipxe", timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.text.splitlines()[1]

    with ThreadPoolExecutor(max_workers=8) as pool:
        return set(pool.map(one, range(count)))


def api_nodes(client: DaemonClient) -> dict[str, str]:
    return {n["name"]: n["ip"] for n in client.request("GET", "/api/v1/nodes")["nodes"]}


def test_broken_edits_keep_the_running_site_and_a_good_one_reaches_every_worker(
    site_dir: Path,
) -> None:
    site = site_dir / "site.yaml"
    good = site.read_text()
    state = StateDir(site_dir / "state")
    serve = Serve(
        [], site, state.root, "--no-dhcp", "--no-tftp",
        "--http-bind=127.0.0.1:0", "--api-bind=127.0.0.1:0", "--workers=2", "--threads=4",
    )  # fmt: skip
    try:
        serve.wait_log("http: serving on")
        port = re.search(r"http: serving on 127\.0\.0\.1:(\d+)", serve.log())
        assert port
        url = f"http://127.0.0.1:{port.group(1)}"
        client = wait_for("the daemon", lambda: DaemonClient.discover(state.root))
        assert isinstance(client, DaemonClient)
        running = api_nodes(client)
        assert running["ctl1"] == "192.0.2.11" and len(running) == 10
        local = "# ctl1: not in build mode, boot from the local disk."
        assert boot_scripts(url, CTL1_MAC) == {local}

        hostile_value = good.replace("ip: 192.0.2.11\n", 'ip: "192.0.2.11\\nrootpw x"\n', 1)
        deep = "site: " + "[" * 5000 + "]" * 5000 + "\n"
        edits = [
            (lambda: _write(site, hostile_value.encode()), r"node ctl1: ip: .*is not a valid"),
            (lambda: _fifo(site), f"{site}: cannot read: not a regular file"),
            (lambda: _write(site, deep.encode()), f"{site}:1:.*nested deeper than 64 levels"),
            (lambda: _write(site, bytes(range(256))), rf"{site}:\d+: not UTF-8 text: byte 128"),
        ]
        for edit, says in edits:
            edit()
            pattern = re.compile(
                rf"ERROR provisioner\.inventory\.source: (?:site {re.escape(str(site))}: )?"
                rf"(?:line \d+: error: )?{says}"
            )
            wait_for(says, lambda p=pattern: p.search(serve.log()), timeout=30)
            assert api_nodes(client) == running, says  # the daemon: the last good site
            assert boot_scripts(url, CTL1_MAC) == {local}, says  # every worker too
            assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
        log = serve.log()
        assert "Traceback" not in log and "internal error" not in log
        assert "rootpw" not in log.replace("\\nrootpw", "")  # quoted, never a line of its own
        assert log.count("edit ignored, keeping the last good inventory") >= len(edits)

        # a good edit: the daemon and every HTTP worker serve it (issue 14)
        _write(site, (good + NEW_NODE).encode())
        wait_for("the daemon to see cmp4", lambda: "cmp4" in api_nodes(client), timeout=30)
        assert api_nodes(client)["cmp4"] == "192.0.2.21"
        assert boot_scripts(url, NEW_MAC, count=32) == {
            "# cmp4: not in build mode, boot from the local disk."
        }
        assert serve.log().count("reloaded: 11 nodes") >= 2  # serve itself and the workers
    finally:
        assert serve.stop() == 0


def _http_master(serve: Serve) -> int:
    """The pid of serve's HTTP side (the gunicorn master: serve's one child without DHCP)."""
    children = [
        pid
        for pid in descendants(serve.proc.pid)
        if int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) == serve.proc.pid
    ]
    assert len(children) == 1, children
    return children[0]


def test_the_http_side_restarted_while_the_site_is_broken_serves_the_last_good_site(
    site_dir: Path,
) -> None:
    """serve restarts its HTTP side when it dies; with site.yaml broken at that moment the
    new one starts from serve's own last good site (it failed to start before, and every
    boot script request was refused until the file was fixed)."""
    site = site_dir / "site.yaml"
    state = StateDir(site_dir / "state")
    serve = Serve(
        [], site, state.root, "--no-dhcp", "--no-tftp", "--no-api",
        "--http-bind=127.0.0.1:0", "--workers=1", "--threads=4",
    )  # fmt: skip
    try:
        serve.wait_log("http: serving on")
        port = re.search(r"http: serving on 127\.0\.0\.1:(\d+)", serve.log())
        assert port
        url = f"http://127.0.0.1:{port.group(1)}"
        assert state.last_good_site.stat().st_mode & 0o777 == 0o600
        _write(site, site.read_bytes().replace(b"ip: 192.0.2.11\n", b"ip: 192.0.2.12\n", 1))
        serve.wait_log("node ctl2: ip: duplicate IP 192.0.2.12 (also node ctl1)")

        os.kill(_http_master(serve), signal.SIGKILL)
        serve.wait_log("http: server exited")
        serve.wait_log("starting with the last good inventory of the running server (10 nodes)")
        wait_for("the new HTTP side", lambda: serve.log().count("http: serving on") == 2)
        local = "# ctl1: not in build mode, boot from the local disk."
        assert boot_scripts(url, CTL1_MAC, count=4) == {local}
        assert "HTTP server exited at start" not in serve.log()
    finally:
        assert serve.stop() == 0

"""Several `provisioner serve` on one PostgreSQL (issue 22), as real processes.

A real PostgreSQL (Debian's, in a temporary folder), real BIND for DNS, and three
boot servers on loopback: a and b serve network main, c serves rack2. The test
plays the nodes' firmware and installer over HTTP (from each node's own address);
BMCs are the fake driver. It shows registration and heartbeats (`provisioner
servers`), each instance answering only its networks' boot scripts, cmp9 on rack2
provisioned to active by c, a kill -9 of a while ctl1 waits for its boot script,
b taking ctl1 over from the recorded step and finishing it (one power cycle, one
DNS record, no event lost), and rack2, with cmp8 in flight, reported unserved
once c is killed too.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from provisioner import programs
from provisioner.inventory import load_site
from provisioner.state.machine import EventKind, NodeState
from provisioner.state.servers import Servers
from provisioner.state.store import Store
from provisioner_lab.bind import BindServer, render_bind_config
from tests.example_secrets import seed_example_secrets
from tests.functional.bindlab import free_port
from tests.functional.bootserver_support import Serve, wait_for

pytestmark = pytest.mark.functional

REPO = Path(__file__).resolve().parents[2]
CTL1_MAC = "52:54:00:7f:00:11"
CMP9_MAC = "52:54:00:7f:00:99"
CMP8_MAC = "52:54:00:7f:00:98"
HEARTBEAT = "0.5"  # a partner silent for 3 s is dead


def _site(root: Path, main_http: int, rack2_http: int, dns: int) -> Path:
    seed_example_secrets(root / "secrets")

    def bmc(address: str) -> str:
        secret = "{file: secrets/bmc-password}"
        return (
            f"bmc: {{driver: fake, address: {address}, user: admin, password: {secret}}}, "
            "network: {interface: enp1s0}"
        )

    text = f"""site: {{name: shared, domain: sim.example.test}}
network:
  cidr: 127.0.0.0/25
  provisioner: {{address: 127.0.0.1, http_port: {main_http}}}
networks:
  rack2:
    cidr: 127.0.0.128/25
    relay: 127.0.0.129
    provisioner: {{address: 127.0.0.1, http_port: {rack2_http}}}
dns:
  server: 127.0.0.1
  port: {dns}
  forward_zone: sim.example.test
  reverse_zone: 0.0.127.in-addr.arpa
  tsig: {{name: provisioner-key, secret: {{file: secrets/tsig.secret}}}}
defaults:
  profile: sim
  root_password_hash: {{file: secrets/root-password.hash}}
profiles:
  sim: {{kernel: sim/vmlinuz, initrd: sim/initrd.img, repo: "http://127.0.0.1:{main_http}/repo/"}}
roles:
  controller:
    layout: controller
    ha: {{vips: [{{name: api, address: 127.0.0.10, aliases: [keystone]}}]}}
  compute: {{layout: compute}}
pipeline:
  timeouts: {{boot_script: 120, kickstart: 120, installed: 120, active: 60}}
  power_retries: 0
  poll_interval: 0.2
nodes:
  - {{name: ctl1, role: controller, macs: ["{CTL1_MAC}"], ip: 127.0.0.11, {bmc("127.0.0.1")}}}
  - {{name: ctl2, role: controller, macs: ["52:54:00:7f:00:12"], ip: 127.0.0.12,
      {bmc("127.0.0.2")}}}
  - {{name: cmp9, role: compute, macs: ["{CMP9_MAC}"], ip: 127.0.0.140, {bmc("127.0.0.3")}}}
  - {{name: cmp8, role: compute, macs: ["{CMP8_MAC}"], ip: 127.0.0.141, {bmc("127.0.0.4")}}}
"""
    (root / "site.yaml").write_text(text)
    return root / "site.yaml"


def _cli(site: Path, state: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "provisioner", "--site", str(site), "--state-dir", str(state),
            "--db-url", url, *args]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=REPO)


def _get(url: str, source: str = "127.0.0.1") -> tuple[int, str]:
    """GET ``url`` from ``source`` (a node's own address: boot scripts go to it only)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(
        parts.hostname or "", parts.port, timeout=10, source_address=(source, 0)
    )
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        reply = conn.getresponse()
        return reply.status, reply.read().decode()
    finally:
        conn.close()


def _post(url: str, source: str, token: str, body: dict[str, str]) -> int:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(
        parts.hostname or "", parts.port, timeout=10, source_address=(source, 0)
    )
    try:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        conn.request("POST", parts.path, json.dumps(body), headers)
        return conn.getresponse().status
    finally:
        conn.close()


def _install(port: int, ip: str, mac: str, node: str) -> None:
    """The node's firmware and installer against the boot server on ``port``: boot script,
    kickstart (its URL names the network's boot server; ``port`` is the one alive), then
    the installer's callbacks with the token the script carried."""
    code, script = _get(f"http://127.0.0.1:{port}/boot/{mac}.ipxe", ip)
    assert code == 200, script
    ks = re.search(r"inst\.ks=(\S+)", script)
    assert ks is not None, script
    ks_url = re.sub(r":\d+/", f":{port}/", ks.group(1), count=1)
    code, _kickstart = _get(ks_url, ip)
    assert code == 200
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(ks_url).query)["token"][0]
    callback = f"http://127.0.0.1:{port}/api/v1/nodes/{node}/callback"
    for status in ("started", "installed"):
        code = _post(callback, ip, token, {"status": status, "message": "simulated"})
        assert code < 300, (status, code)


def _active(store: Store, node: str) -> bool:
    rec = store.get(node)
    assert not rec.state.is_failed, f"node {node}: {rec.state.value}: {rec.reason}"
    return rec.state is NodeState.ACTIVE


def _provision(site: Path, state: Path, url: str, *nodes: str) -> subprocess.Popen[bytes]:
    """`provisioner provision NODES` through the daemon of the instance owning ``state``."""
    argv = [sys.executable, "-m", "provisioner", "--site", str(site), "--state-dir", str(state),
            "--db-url", url, "provision", *nodes, "--json"]  # fmt: skip
    return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_three_boot_servers_on_one_postgresql(tmp_path: Path, postgres: object) -> None:
    url = postgres.database()  # type: ignore[attr-defined]
    main_http, b_http, rack2_http, dns = free_port(), free_port(), free_port(), free_port()
    site_path = _site(tmp_path, main_http, rack2_http, dns)
    upgraded = _cli(site_path, tmp_path / "cli", url, "db", "upgrade")
    assert upgraded.returncode == 0 and "schema upgraded from none" in upgraded.stdout, upgraded

    bind = BindServer(render_bind_config(load_site(site_path), tmp_path / "bind", dns))
    bind.start(timeout=60)
    common = ("--db-url", url, "--no-dhcp", "--no-tftp", "--workers", "1", "--threads", "4",
              "--heartbeat", HEARTBEAT)  # fmt: skip
    servers: dict[str, Serve] = {}
    clients: list[subprocess.Popen[bytes]] = []
    try:
        for name, networks, http in (("a", "main", main_http), ("b", "main", b_http),
                                     ("c", "rack2", rack2_http)):  # fmt: skip
            state = tmp_path / name / "state"
            (state / "boot-files" / "sim").mkdir(parents=True)
            for f in ("vmlinuz", "initrd.img"):
                (state / "boot-files" / "sim" / f).write_bytes(b"\0" * 4096)
            servers[name] = Serve([], site_path, state, *common, "--networks", networks,
                                  "--server-name", name, "--http-bind", f"127.0.0.1:{http}",
                                  f"--api-bind=127.0.0.1:{free_port()}")  # fmt: skip
        for serve in servers.values():
            serve.wait_log("registered for networks", timeout=90)

        listed = json.loads(_cli(site_path, tmp_path / "cli", url, "servers", "--json").stdout)
        assert {s["name"]: (s["networks"], s["alive"]) for s in listed["servers"]} == {
            "a": (["main"], True), "b": (["main"], True), "c": (["rack2"], True)
        }  # fmt: skip
        assert listed["networks"]["main"]["servers"] == ["a", "b"]

        # each instance answers only its networks' machines
        code, text = _get(f"http://127.0.0.1:{main_http}/boot/{CMP9_MAC}.ipxe")
        assert code == 404 and "not this boot server's network" in text
        code, text = _get(f"http://127.0.0.1:{rack2_http}/boot/{CMP9_MAC}.ipxe")
        assert code == 200 and "not this boot server" not in text

        # c provisions rack2's nodes, a provisions ctl1 on main
        store = Store(url)
        clients += [
            _provision(site_path, tmp_path / "c" / "state", url, "cmp9", "cmp8"),
            _provision(site_path, tmp_path / "a" / "state", url, "ctl1"),
        ]

        def waiting_for_boot_script(*nodes: str) -> bool:
            for client in clients:
                assert client.poll() is None, client.communicate()[0]
            recs = [store.find(n) for n in nodes]
            return all(r is not None and r.step == "wait for boot script" for r in recs)

        wait_for("all waiting for their boot scripts",
                 lambda: waiting_for_boot_script("ctl1", "cmp9", "cmp8"), timeout=60)  # fmt: skip
        _install(rack2_http, "127.0.0.140", CMP9_MAC, "cmp9")
        wait_for("cmp9 active", lambda: _active(store, "cmp9"), 60)

        # a dies like kill -9 while ctl1 waits for its boot script
        held = store.reservation("ctl1")
        assert held is not None and held.server == "a"
        servers["a"].proc.send_signal(signal.SIGKILL)
        servers["a"].proc.wait(10)
        before = [e.id for e in store.events("ctl1")]

        def taken_by_b() -> bool:
            r = store.reservation("ctl1")
            return r is not None and r.server == "b"

        wait_for("b to take ctl1 over", taken_by_b, timeout=30)
        servers["b"].wait_log("taking over ctl1", timeout=10)

        # the node's firmware now reaches b (the network's boot server address moved)
        _install(b_http, "127.0.0.11", CTL1_MAC, "ctl1")
        wait_for("ctl1 active", lambda: _active(store, "ctl1"), 60)

        events = store.events("ctl1")
        assert [e.id for e in events][: len(before)] == before  # nothing lost or rewritten
        cycles = [e for e in events if e.kind is EventKind.POWER and e.event == "cycle"]
        assert len(cycles) == 1, [e.message for e in events]
        notes = [e.message for e in events if "took over stale reservation of a" in e.message]
        assert len(notes) == 1, [e.message for e in events]
        dig = [programs.path("dig"), "@127.0.0.1", "-p", str(dns), "+short",
               "ctl1.sim.example.test", "A"]  # fmt: skip
        answer = subprocess.run(dig, capture_output=True, text=True, timeout=30, check=True)
        assert answer.stdout.split() == ["127.0.0.11"]  # one record, not one per server

        # c dies with cmp8 in flight: nobody serves rack2, and that is reported
        os.kill(servers["c"].proc.pid, signal.SIGKILL)
        servers["c"].proc.wait(10)

        registry = Servers(store)
        wait_for("c dead", lambda: "rack2" not in registry.serving(), timeout=30)
        listed = json.loads(_cli(site_path, tmp_path / "cli", url, "servers", "--json").stdout)
        assert listed["unserved"] == {"rack2": ["cmp8"]}
        alive = {s["name"]: s["alive"] for s in listed["servers"]}
        assert alive == {"a": False, "b": True, "c": False}
        servers["b"].wait_log("network rack2: no live boot server; in flight there: cmp8", 10)
        store.close()
    finally:
        for client in clients:
            client.kill()
            client.wait(10)
        for serve in servers.values():
            serve.stop()
        bind.stop()

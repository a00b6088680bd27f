"""Several `provisioner serve` on one PostgreSQL (issue 22), as real processes on real networks.

Two provisioning networks, each a bridge in a namespace ``lab`` that also holds
a management bridge with PostgreSQL (Debian's, in a temporary folder) and BIND.
Three boot servers, each in its own namespace with a leg on its provisioning
network and one on the management network: a and b serve network main
(192.0.2.0/25; a holds the network's boot server address 192.0.2.2, a VIP, and
both run dnsmasq for it), c serves rack2 (192.0.2.128/25) with its own dnsmasq
for rack2. Each node is a namespace on its network's bridge: its
DHCP (busybox udhcpc) and its firmware's and installer's HTTP requests come from
its own address there. BMCs are the fake driver.

It shows registration (`provisioner servers`), each instance answering only its
networks' boot scripts, cmp9 on rack2 provisioned by c, and a ``kill -9`` of a
after ctl1 fetched its boot script (with a's deploy token) from it: the VIP
moves to b (as keepalived would), b takes ctl1 over from the recorded step, its
dnsmasq answers ctl1's DHCP, the kickstart and callbacks with a's token are
accepted, and ctl1 ends active with one power cycle, one DNS record each way
(read back from BIND), one DHCP host entry per instance, and no event lost.
Last, c is killed too with cmp8 in flight and rack2 is reported unserved.
(Not here: a DHCP relay between a network and its boot servers.)
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
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
from tests.functional.bootserver_support import Serve, alive, sh, wait_for
from tests.functional.netns import Namespaces, entered, in_namespace
from tests.functional.test_bootserver_dhcp import udhcpc
from tests.postgres import postgres_cluster

pytestmark = pytest.mark.functional

REPO = Path(__file__).resolve().parents[2]
CTL1_MAC = "52:54:00:7f:00:11"
CMP9_MAC = "52:54:00:7f:00:99"
CMP8_MAC = "52:54:00:7f:00:98"
HEARTBEAT = "0.5"  # a partner silent for 3 s is dead
HTTP = 8080  # every boot server's port, each in its own namespace
MGMT = "203.0.113.1"  # PostgreSQL and BIND, on the management bridge
MAIN_VIP = "192.0.2.2"  # network main's boot server address: a's, then b's
RACK2_SERVER = "192.0.2.130"
#: boot server -> (networks, provisioning bridge, own address there, management address)
SERVERS = {
    "a": ("main", "brmain", "192.0.2.3", "203.0.113.11"),
    "b": ("main", "brmain", "192.0.2.4", "203.0.113.12"),
    "c": ("rack2", "brrack2", RACK2_SERVER, "203.0.113.13"),
}
#: node -> (bridge, address, MAC)
NODES = {"ctl1": ("brmain", "192.0.2.11", CTL1_MAC), "cmp9": ("brrack2", "192.0.2.140", CMP9_MAC)}


def _site(root: Path, dns: int) -> Path:
    seed_example_secrets(root / "secrets")

    def bmc(address: str) -> str:
        secret = "{file: secrets/bmc-password}"
        return (
            f"bmc: {{driver: fake, address: {address}, user: admin, password: {secret}}}, "
            "network: {interface: eth0}"
        )

    text = f"""site: {{name: shared, domain: sim.example.test}}
network:
  cidr: 192.0.2.0/25
  provisioner: {{address: {MAIN_VIP}, http_port: {HTTP}, interface: prov0}}
  unknown_macs: ignore
networks:
  rack2:
    cidr: 192.0.2.128/25
    provisioner: {{address: {RACK2_SERVER}, http_port: {HTTP}, interface: prov0}}
dns:
  server: {MGMT}
  port: {dns}
  forward_zone: sim.example.test
  reverse_zone: 2.0.192.in-addr.arpa
  tsig: {{name: provisioner-key, secret: {{file: secrets/tsig.secret}}}}
defaults:
  profile: sim
  root_password_hash: {{file: secrets/root-password.hash}}
profiles:
  sim: {{kernel: sim/vmlinuz, initrd: sim/initrd.img, repo: "http://{MAIN_VIP}:{HTTP}/repo/"}}
roles:
  controller:
    layout: controller
    ha: {{vips: [{{name: api, address: 192.0.2.10, aliases: [keystone]}}]}}
  compute: {{layout: compute}}
pipeline:
  timeouts: {{boot_script: 120, kickstart: 120, installed: 120, active: 60}}
  power_retries: 0
  poll_interval: 0.2
nodes:
  - {{name: ctl1, role: controller, macs: ["{CTL1_MAC}"], ip: 192.0.2.11, {bmc("127.0.0.1")}}}
  - {{name: ctl2, role: controller, macs: ["52:54:00:7f:00:12"], ip: 192.0.2.12,
      {bmc("127.0.0.2")}}}
  - {{name: cmp9, role: compute, macs: ["{CMP9_MAC}"], ip: 192.0.2.140, {bmc("127.0.0.3")}}}
  - {{name: cmp8, role: compute, macs: ["{CMP8_MAC}"], ip: 192.0.2.141, {bmc("127.0.0.4")}}}
"""
    (root / "site.yaml").write_text(text)
    return root / "site.yaml"


def _network(ns: Namespaces) -> dict[str, str]:
    """The namespaces: lab (bridges, PostgreSQL, BIND), one per boot server, one per node."""
    lab = ns.add("l")
    ns.bridge(lab, "brmgmt", f"{MGMT}/24")
    ns.bridge(lab, "brmain", "192.0.2.1/25")  # the test's own view of each network
    ns.bridge(lab, "brrack2", "192.0.2.129/25")
    made = {"lab": lab}
    for name, (_nets, bridge, address, mgmt) in SERVERS.items():
        made[name] = ns.add(name)
        ns.plug(lab, bridge, made[name], "prov0", f"{address}/25")
        ns.plug(lab, "brmgmt", made[name], "mgmt0", f"{mgmt}/24")
    sh("ip", "-n", made["a"], "addr", "add", f"{MAIN_VIP}/25", "dev", "prov0")
    for node, (bridge, address, mac) in NODES.items():
        made[node] = ns.add(node)
        ns.plug(lab, bridge, made[node], "eth0", f"{address}/25", mac=mac)
    return made


def _cli(site: Path, state: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "provisioner", "--site", str(site), "--state-dir", str(state),
            "--db-url", url, *args]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=REPO)


def _get(url: str) -> tuple[int, str]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        reply = conn.getresponse()
        return reply.status, reply.read().decode()
    finally:
        conn.close()


def _post(url: str, token: str, body: dict[str, str]) -> int:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        conn.request("POST", parts.path, json.dumps(body), headers)
        return conn.getresponse().status
    finally:
        conn.close()


def _boot_script(ns: str, server: str, mac: str) -> str:
    """The node's firmware (in its namespace) fetches its boot script; the kickstart URL."""
    code, script = in_namespace(ns, lambda: _get(f"http://{server}:{HTTP}/boot/{mac}.ipxe"))
    assert code == 200, script
    ks = re.search(r"inst\.ks=(\S+)", script)
    assert ks is not None, script
    return ks.group(1)


def _installer(ns: str, node: str, ks_url: str) -> None:
    """The node's installer (in its namespace): the kickstart, then its callbacks, with
    the token the boot script carried, all to the boot server the URL names."""
    code, _kickstart = in_namespace(ns, lambda: _get(ks_url))
    assert code == 200, code
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(ks_url).query)["token"][0]
    host = urllib.parse.urlsplit(ks_url).netloc
    callback = f"http://{host}/api/v1/nodes/{node}/callback"
    for status in ("started", "installed"):
        body = {"status": status, "message": "simulated"}
        code = in_namespace(ns, lambda b=body: _post(callback, token, b))  # type: ignore[misc]
        assert code < 300, (status, code)


def _active(store: Store, node: str) -> bool:
    rec = store.get(node)
    assert not rec.state.is_failed, f"node {node}: {rec.state.value}: {rec.reason}"
    return rec.state is NodeState.ACTIVE


def _in(ns: str) -> list[str]:
    return programs.command(["ip", "netns", "exec", ns])


def _provision(ns: str, site: Path, state: Path, url: str, *nodes: str) -> subprocess.Popen[bytes]:
    """`provisioner provision NODES` through the daemon of the instance owning ``state``."""
    argv = [*_in(ns), sys.executable, "-m", "provisioner", "--site", str(site),
            "--state-dir", str(state), "--db-url", url, "provision", *nodes, "--json"]  # fmt: skip
    return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _dig(dns: int, name: str, kind: str) -> list[str]:
    argv = [programs.path("dig"), f"@{MGMT}", "-p", str(dns), "+short", name, kind]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=30, check=True
    ).stdout.split()


def _host_entries(state: Path, mac: str) -> list[str]:
    """The lines of an instance's dnsmasq host files that name ``mac``."""
    hosts = state / "dhcp" / "hosts"
    files = sorted(hosts.iterdir()) if hosts.is_dir() else []
    return [line for f in files for line in f.read_text().splitlines() if mac in line]


def test_three_boot_servers_on_two_networks_one_postgresql(tmp_path: Path) -> None:
    ns = Namespaces("p22")
    try:
        where = _network(ns)
        with entered(where["lab"]):
            _run(tmp_path, where)
    finally:
        ns.delete()


def _run(tmp_path: Path, where: dict[str, str]) -> None:
    """The test proper, its thread in the lab namespace (PostgreSQL, BIND and dig there)."""
    with postgres_cluster(host=MGMT, clients="203.0.113.0/24") as postgres:
        url = postgres.database()
        with socket.socket() as probe:
            probe.bind((MGMT, 0))
            dns = int(probe.getsockname()[1])
        site_path = _site(tmp_path, dns)
        upgraded = _cli(site_path, tmp_path / "cli", url, "db", "upgrade")
        assert upgraded.returncode == 0 and "schema upgraded from none" in upgraded.stdout, upgraded
        bind = BindServer(render_bind_config(load_site(site_path), tmp_path / "bind", dns, MGMT))
        bind.start(timeout=60)
        try:
            _serve_and_take_over(tmp_path, where, site_path, url, dns)
        finally:
            bind.stop()


def _serve_and_take_over(
    tmp_path: Path, where: dict[str, str], site_path: Path, url: str, dns: int
) -> None:
    common = ("--db-url", url, "--no-tftp", "--workers", "1", "--threads", "4",
              "--heartbeat", HEARTBEAT, "--http-bind", f"0.0.0.0:{HTTP}")  # fmt: skip
    states = {name: tmp_path / name / "state" for name in SERVERS}
    servers: dict[str, Serve] = {}
    clients: list[subprocess.Popen[bytes]] = []
    try:
        for name, (networks, *_addresses) in SERVERS.items():
            state = states[name]
            (state / "boot-files" / "sim").mkdir(parents=True)
            for f in ("vmlinuz", "initrd.img"):
                (state / "boot-files" / "sim" / f).write_bytes(b"\0" * 4096)
            servers[name] = Serve(_in(where[name]), site_path, state, *common,
                                  "--networks", networks, "--server-name", name)  # fmt: skip
        for serve in servers.values():
            serve.wait_log("registered for networks", timeout=90)

        listed = json.loads(_cli(site_path, tmp_path / "cli", url, "servers", "--json").stdout)
        assert {s["name"]: (s["networks"], s["alive"]) for s in listed["servers"]} == {
            "a": (["main"], True), "b": (["main"], True), "c": (["rack2"], True)
        }  # fmt: skip
        assert listed["networks"]["main"]["servers"] == ["a", "b"]

        # each instance answers only its networks' machines (the test reaches both networks)
        code, text = _get(f"http://{MAIN_VIP}:{HTTP}/boot/{CMP9_MAC}.ipxe")
        assert code == 404 and "not this boot server's network" in text

        # c provisions rack2's nodes, a provisions ctl1 on main
        store = Store(url)
        clients += [
            _provision(where["c"], site_path, states["c"], url, "cmp9", "cmp8"),
            _provision(where["a"], site_path, states["a"], url, "ctl1"),
        ]

        def at_step(step: str, *nodes: str) -> bool:
            for client in clients:
                assert client.poll() is None, client.communicate()[0]
            recs = [store.find(n) for n in nodes]
            return all(r is not None and r.step == step for r in recs)

        wait_for("all waiting for their boot scripts",
                 lambda: at_step("wait for boot script", "ctl1", "cmp9", "cmp8"), 60)  # fmt: skip
        assert udhcpc(where["cmp9"], tries=3, limit=20) == "192.0.2.140"  # c's dnsmasq
        cmp9_ks = _boot_script(where["cmp9"], RACK2_SERVER, CMP9_MAC)
        _installer(where["cmp9"], "cmp9", cmp9_ks)
        wait_for("cmp9 active", lambda: _active(store, "cmp9"), 60)

        # ctl1 gets its boot script (and a's deploy token) from a, then a dies like kill -9
        ctl1_ks = _boot_script(where["ctl1"], MAIN_VIP, CTL1_MAC)
        assert urllib.parse.urlsplit(ctl1_ks).netloc == f"{MAIN_VIP}:{HTTP}"
        wait_for("ctl1 waiting for its kickstart", lambda: at_step("wait for kickstart", "ctl1"))
        held = store.reservation("ctl1")
        assert held is not None and held.server == "a"
        a_dnsmasq = int((states["a"] / "dhcp" / "dnsmasq.pid").read_text().split()[0])
        servers["a"].proc.send_signal(signal.SIGKILL)
        servers["a"].proc.wait(10)
        wait_for("a's dnsmasq gone with it", lambda: not alive(a_dnsmasq), 10)
        before = [e.id for e in store.events("ctl1")]
        # the network's boot server address moves to b, as keepalived does; its gratuitous
        # ARP is played by flushing the node's neighbour cache
        sh("ip", "-n", where["a"], "addr", "del", f"{MAIN_VIP}/25", "dev", "prov0")
        sh("ip", "-n", where["b"], "addr", "add", f"{MAIN_VIP}/25", "dev", "prov0")
        sh("ip", "-n", where["ctl1"], "neigh", "flush", "all")

        def taken_by_b() -> bool:
            r = store.reservation("ctl1")
            return r is not None and r.server == "b"

        wait_for("b to take ctl1 over", taken_by_b, timeout=30)
        servers["b"].wait_log("taking over ctl1", timeout=10)

        # ctl1's installer: its DHCP answered by b's dnsmasq, then the kickstart and the
        # callbacks with the token a issued, now to b
        assert udhcpc(where["ctl1"], tries=3, limit=20) == "192.0.2.11"
        _installer(where["ctl1"], "ctl1", ctl1_ks)
        wait_for("ctl1 active", lambda: _active(store, "ctl1"), 60)

        events = store.events("ctl1")
        assert [e.id for e in events][: len(before)] == before  # nothing lost or rewritten
        kinds = [e.kind for e in events]
        assert EventKind.BOOT_SCRIPT in kinds[: len(before)]  # served by a
        assert EventKind.KICKSTART_SERVED in kinds[len(before) :]  # by b, a's token accepted
        cycles = [e for e in events if e.kind is EventKind.POWER and e.event == "cycle"]
        assert len(cycles) == 1, [e.message for e in events]
        notes = [e.message for e in events if "took over stale reservation of a" in e.message]
        assert len(notes) == 1, [e.message for e in events]
        # one record each way in BIND, not one per server
        assert _dig(dns, "ctl1.sim.example.test", "A") == ["192.0.2.11"]
        assert _dig(dns, "11.2.0.192.in-addr.arpa", "PTR") == ["ctl1.sim.example.test."]
        # one DHCP host entry for ctl1 in each dnsmasq of main, the same; none on rack2
        assert _host_entries(states["a"], CTL1_MAC) == _host_entries(states["b"], CTL1_MAC)
        assert len(_host_entries(states["b"], CTL1_MAC)) == 1
        assert _host_entries(states["c"], CTL1_MAC) == []
        assert len(_host_entries(states["c"], CMP9_MAC)) == 1
        assert _host_entries(states["a"], CMP9_MAC) == _host_entries(states["b"], CMP9_MAC) == []

        # c dies with cmp8 in flight: nobody serves rack2, and that is reported
        os.kill(servers["c"].proc.pid, signal.SIGKILL)
        servers["c"].proc.wait(10)

        registry = Servers(store)
        wait_for("c dead", lambda: "rack2" not in registry.serving(), timeout=30)
        listed = json.loads(_cli(site_path, tmp_path / "cli", url, "servers", "--json").stdout)
        assert listed["unserved"] == {"rack2": ["cmp8"]}
        liveness = {s["name"]: s["alive"] for s in listed["servers"]}
        assert liveness == {"a": False, "b": True, "c": False}
        servers["b"].wait_log("network rack2: no live boot server; in flight there: cmp8", 10)
        store.close()
    finally:
        for client in clients:
            client.kill()
            client.wait(10)
        for serve in servers.values():
            serve.stop()

"""Seconds to publish 1,000 nodes into a real BIND: batched vs one update per node.

Run from the repository root: python3 benchmarks/dns_publish.py [--nodes 1000]
It starts its own named (Debian's bind9) on a free loopback port for each
measurement. The records use 198.18.0.0/15 (the benchmarking range) as data;
nothing is sent anywhere but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from provisioner.dnsclient import DnsServer
from provisioner.dnslab import BindServer, render_bind_config
from provisioner.dnspublish import make_plan, publish_node, site_scope
from provisioner.dnsupdate import apply_changes
from provisioner.inventory import Site, load_site

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def big_site(folder: Path, n: int, port: int) -> Site:
    raw = yaml.safe_load((REPO / "examples" / "site.yaml").read_text())
    raw["network"] = {
        "cidr": "198.18.0.0/16",
        "provisioner": {"address": "198.18.255.2"},
    }
    raw["dns"].update(server="127.0.0.1", port=port, reverse_zone="18.198.in-addr.arpa")
    raw["roles"]["controller"]["ha"]["vips"][0]["address"] = "198.18.255.10"
    secret = {"file": "secrets/bmc-password"}
    raw["nodes"] = [
        {
            "name": f"n{i:04d}",
            "role": "controller" if i < 3 else "compute",
            "macs": [f"52:54:00:00:{i // 256:02x}:{i % 256:02x}"],
            "ip": f"198.18.{i // 250}.{i % 250 + 1}",
            "bmc": {
                "driver": "ipmi",
                "address": "127.0.0.1",
                "port": 20000 + i,
                "user": "a",
                "password": secret,
            },
        }
        for i in range(n)
    ]
    shutil.copytree(REPO / "examples" / "secrets", folder / "secrets", dirs_exist_ok=True)
    for path in (folder / "secrets").iterdir():
        path.chmod(0o600)
    (folder / "secrets" / "tsig.secret").write_text(base64.b64encode(os.urandom(32)).decode())
    (folder / "site.yaml").write_text(yaml.safe_dump(raw))
    return load_site(folder / "site.yaml")


def fresh_bind(root: Path, n: int, tag: str) -> tuple[Site, BindServer]:
    folder = root / tag
    folder.mkdir()
    port = free_port()
    site = big_site(folder, n, port)
    return site, BindServer(render_bind_config(site, folder / "bind", port)).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument(
        "--pipeline-nodes",
        type=int,
        default=100,
        help="nodes published one publish_node() call each (reads the zone each time)",
    )
    args = parser.parse_args()
    n = args.nodes
    with tempfile.TemporaryDirectory(prefix="dns-bench-") as tmp:
        root = Path(tmp)

        site, bind = fresh_bind(root, n, "batched")
        try:
            server = DnsServer.from_site(site, timeout=30)
            t0 = time.perf_counter()
            planned = make_plan(site, server, site_scope(site), retry_for=5)
            t1 = time.perf_counter()
            report = apply_changes(server, planned.changes, retry_for=5)
            t2 = time.perf_counter()
        finally:
            bind.stop()
        print(
            f"{n} nodes, batched:        {t2 - t0:6.2f} s total ({t1 - t0:.2f} s read + plan, "
            f"{t2 - t1:.2f} s for {report.messages} update messages, {report.changes} names)"
        )

        site, bind = fresh_bind(root, n, "per-node")
        try:
            server = DnsServer.from_site(site, timeout=30)
            planned = make_plan(site, server, site_scope(site), retry_for=5)
            t1 = time.perf_counter()
            report = apply_changes(server, planned.changes, retry_for=5, max_names=1)
            t2 = time.perf_counter()
        finally:
            bind.stop()
        print(
            f"{n} nodes, one per update: {t2 - t1:6.2f} s for {report.messages} update messages "
            f"(A+marker and PTR sent separately)"
        )

        k = min(args.pipeline_nodes, n)
        site, bind = fresh_bind(root, n, "pipeline")
        try:
            server = DnsServer.from_site(site, timeout=30)
            t1 = time.perf_counter()
            for node in site.nodes[:k]:
                publish_node(site, node, server, retry_for=5)
            t2 = time.perf_counter()
        finally:
            bind.stop()
        print(
            f"{k} publish_node() calls:  {t2 - t1:6.2f} s ({(t2 - t1) / k * 1000:.1f} ms a node, "
            "each reads both zones by AXFR first)"
        )


if __name__ == "__main__":
    main()

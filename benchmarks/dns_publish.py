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
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "functional"))

from bindlab import free_port, point_site_at, write_big_site
from results import record

from provisioner.ddns.client import DnsServer
from provisioner.ddns.publish import make_plan, publish_node, site_scope
from provisioner.ddns.update import apply_changes
from provisioner.inventory import Site, load_site
from provisioner_lab.bind import BindServer, render_bind_config

REPO = Path(__file__).resolve().parent.parent


def big_site(folder: Path, n: int, port: int) -> Site:
    """The example site grown to ``n`` nodes (the DNS tests' generator), its
    DNS pointed at the benchmark's BIND, with a fresh TSIG secret."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "examples" / "site.yaml", folder / "site.yaml")  # secrets: generated
    (folder / "secrets").mkdir(mode=0o700, exist_ok=True)
    (folder / "secrets" / "tsig.secret").write_text(base64.b64encode(os.urandom(32)).decode())
    (folder / "secrets" / "tsig.secret").chmod(0o600)
    point_site_at(folder, port)
    write_big_site(folder, n)
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
        record(
            f"DNS: {n} nodes published, batched (library, not the CLI)",
            t2 - t0,
            "s",
            "< 1 s",
            t2 - t0 < 1.0,
            note=f"{report.messages} update messages",
        )
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

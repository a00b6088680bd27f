#!/usr/bin/env python3
"""Kickstarts rendered per second for a generated 10,000-node inventory.

Builds a site like examples/site.yaml with N nodes (roles in HA proportions, a
/16 of the 198.18.0.0/15 benchmarking range, no traffic is sent), loads and
validates it, then renders every node's kickstart the way the boot server does.

    python3 benchmarks/render_kickstarts.py [--nodes 10000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from ipaddress import IPv4Address
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from provisioner.install.kickstart import KickstartRenderer, render_kickstart  # noqa: E402
from provisioner.install.partitioning import plan_for  # noqa: E402
from provisioner.install.preseed import PreseedRenderer  # noqa: E402
from provisioner.inventory import load_site  # noqa: E402

ROLES = (("controller", 3), ("network", 4), ("storage", 20), ("compute", 73))  # per 100


def generated_site(folder: Path, n_nodes: int) -> Path:
    site = yaml.safe_load((REPO / "examples" / "site.yaml").read_text())
    # its secrets are generated in folder/secrets on first use (generate: in site.yaml)
    password = site["nodes"][0]["bmc"]["password"]
    site["network"] = {
        "cidr": "198.18.0.0/16",
        "gateway": "198.18.0.1",
        "dns_servers": ["198.18.0.3"],
        "provisioner": {"address": "198.18.0.2", "http_port": 8080},
    }
    site["dns"]["server"] = "198.18.0.3"
    site["dns"]["reverse_zone"] = "18.198.in-addr.arpa"
    site["profiles"]["rocky9"]["repo"] = "http://198.18.0.2:8080/repo/rocky9/BaseOS/x86_64/os/"
    site["roles"]["controller"]["ha"]["vips"][0]["address"] = "198.18.0.10"
    kinds = [kind for kind, share in ROLES for _ in range(share)]
    nodes = []
    for i in range(n_nodes):
        kind = kinds[i % len(kinds)]
        node = {
            "name": f"{kind[:3]}{i:05d}",
            "role": kind,
            "macs": [
                f"52:54:{(i >> 24) & 255:02x}:{(i >> 16) & 255:02x}:"
                f"{(i >> 8) & 255:02x}:{i & 255:02x}"
            ],
            "ip": str(IPv4Address("198.18.1.0") + i),
            "bmc": {
                "driver": "ipmi",
                "address": "127.0.0.1",
                "port": 10000 + i,
                "user": "admin",
                "password": password,
            },
        }
        if kind == "controller":
            node["disks"] = {"count": 2, "min_size_gb": 240}
        elif kind == "storage":
            node["disks"] = {"count": 12, "min_size_gb": 240}
        nodes.append(node)
    site["nodes"] = nodes
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(site, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = generated_site(Path(tmp), args.nodes)
        t0 = time.perf_counter()
        site = load_site(path)
        print(
            f"inventory: {len(site.nodes)} nodes loaded and validated in "
            f"{time.perf_counter() - t0:.2f} s"
        )

        t0 = time.perf_counter()
        for node in site.nodes:
            plan_for(site, node)
        elapsed = time.perf_counter() - t0
        print(f"partition plans: {len(site.nodes) / elapsed:,.0f} nodes/s")

        renderer = KickstartRenderer(site)
        sizes = []
        t0 = time.perf_counter()
        for node in site.nodes:
            text = renderer.render(node, token="x" * 43, base_url="http://198.18.0.2:8080")
            sizes.append(len(text))
        elapsed = time.perf_counter() - t0
        print(
            f"kickstarts (one renderer for the site): {len(site.nodes)} in {elapsed:.2f} s = "
            f"{len(site.nodes) / elapsed:,.0f} kickstarts/s "
            f"(median {statistics.median(sizes):,.0f} bytes)"
        )

        sample = site.nodes[:: max(1, len(site.nodes) // 1000)]
        t0 = time.perf_counter()
        for node in sample:
            render_kickstart(site, node, token="x" * 43, base_url="http://198.18.0.2:8080")
        elapsed = time.perf_counter() - t0
        print(
            f"kickstarts (render_kickstart per request, as /ks/<node> does): "
            f"{len(sample) / elapsed:,.0f} kickstarts/s over {len(sample)} nodes"
        )

        preseeds = PreseedRenderer(site)
        t0 = time.perf_counter()
        for node in sample:
            preseeds.render(node, token="x" * 43, base_url="http://198.18.0.2:8080")
        elapsed = time.perf_counter() - t0
        print(f"preseeds: {len(sample) / elapsed:,.0f} preseeds/s over {len(sample)} nodes")


if __name__ == "__main__":
    main()

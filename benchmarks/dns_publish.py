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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "functional"))

from bindlab import free_port, point_site_at, write_big_site
from results import record

from provisioner import programs
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


def cli(folder: Path, *args: str) -> float:
    """Seconds `provisioner ARGS` takes on the site in ``folder`` (must succeed)."""
    argv = [str(Path(sys.executable).with_name("provisioner")), "--site", str(folder / "site.yaml")]
    argv += ["--state-dir", str(folder / "state"), *args]
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def nsupdate(site: Site, folder: Path) -> float:
    """Seconds nsupdate takes to add every node's A and PTR, batched by 500 names."""
    folder.mkdir()
    secret = site.secret(site.dns.tsig.secret, "tsig").get_secret_value()
    keyfile = folder / "key"
    keyfile.write_text(f'key "{site.dns.tsig.name}" {{ algorithm {site.dns.tsig.algorithm}; '
                       f'secret "{secret}"; }};\n')  # fmt: skip
    lines = [f"server 127.0.0.1 {site.dns.port}"]
    for zone, records in (
        (site.dns.forward_zone, [
            f"update add {n.name}.{site.dns.forward_zone}. 300 A {n.ip}" for n in site.nodes
        ]),
        (site.dns.reverse_zone, [
            f"update add {n.ip.reverse_pointer}. 300 PTR {n.name}.{site.dns.forward_zone}."
            for n in site.nodes
        ]),
    ):  # fmt: skip
        for i in range(0, len(records), 500):
            lines += [f"zone {zone}", *records[i : i + 500], "send"]
    script = folder / "updates"
    script.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    subprocess.run([programs.path("nsupdate"), "-k", str(keyfile), str(script)], check=True)
    return time.perf_counter() - start


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

        # the CLI, as an operator runs it: a validate first (the site is then cached in
        # the state dir, as after any earlier command), apply, then apply with no change
        site, bind = fresh_bind(root, n, "cli")
        folder = root / "cli"
        try:
            (folder / "state").mkdir(mode=0o700)  # validate caches the site in an existing one
            cli(folder, "validate")
            first = cli(folder, "dns", "apply")
            again = cli(folder, "dns", "apply")
        finally:
            bind.stop()
        site, bind = fresh_bind(root, n, "nsupdate")
        try:
            reference = nsupdate(site, root / "nsupdate" / "script")
        finally:
            bind.stop()
        print(f"{n} nodes, CLI dns apply:  {first:6.2f} s; again, nothing to change: {again:.2f} s")
        print(f"{n} nodes, nsupdate batched (A+PTR, 500 names a message): {reference:6.2f} s")
        record(
            f"DNS: {n} nodes, provisioner dns apply (CLI)",
            first,
            "s",
            "< 1 s",
            first < 1.0,
            reference=reference,
            reference_name="nsupdate batched",
        )
        record(
            f"DNS: {n} nodes, dns apply with nothing to change (CLI)",
            again,
            "s",
            "< 0.3 s",
            again < 0.3,
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

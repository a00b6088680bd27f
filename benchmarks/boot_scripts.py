#!/usr/bin/env python3
"""GET /boot/<mac>.ipxe at 10,000 nodes and 50 concurrent clients, and every event counted.

`provisioner serve` (4 gthread workers, DHCP/TFTP off) on a generated
10,000-node site with every node enrolled; ApacheBench (`ab -k -c 50`, a C
load generator, so the client's own GIL does not inflate the tail) fetches
boot scripts of a spread of nodes (one ab run per node MAC, in parallel runs
splitting the clients). p99 comes from ab's percentile table. The reference is
nginx serving a static file of the same size on the same machine (when nginx
is installed): the floor for a tiny HTTP reply here.

Then the BOOT_SCRIPT events in the store are counted against the requests ab
reports as completed (the goal: every one).

    python3 benchmarks/boot_scripts.py [--nodes 10000] [--requests 20000]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bootserver import big_site, nginx, provisioner_serve
from results import record

from provisioner import programs
from provisioner.errors import ProgramMissing
from provisioner.inventory import load_site
from provisioner.settings import StateDir
from provisioner.state.machine import EventKind
from provisioner.state.store import EventRow, Store

GOAL_MS = 10.0
CLIENTS = 50
MACS = 5  # parallel ab runs, one MAC each, CLIENTS / MACS connections each


def _have(name: str) -> bool:
    try:
        programs.path(name)
    except ProgramMissing:
        return False
    return True


def ab(urls: list[str], total: int, clients: int) -> tuple[float, float, int]:
    """(p99 ms as the worst of the runs, requests/s summed, requests completed)."""
    exe = programs.path("ab")
    per = max(clients // len(urls), 1)
    procs = [
        subprocess.Popen(
            [exe, "-q", "-k", "-c", str(per), "-n", str(total // len(urls)), url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for url in urls
    ]
    p99, rate, done = 0.0, 0.0, 0
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"ab failed: {err.strip()}")
        p99 = max(p99, float(re.search(r"^\s*99%\s+(\d+)", out, re.M).group(1)))  # type: ignore[union-attr]
        rate += float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        completed = int(re.search(r"Complete requests:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
        failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
        non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
        if failed or non2xx:
            raise RuntimeError(f"ab: {failed} failed, {non2xx.group(1) if non2xx else 0} non-2xx")
        done += completed
    return p99, rate, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-boot-") as tmp_name:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)  # nginx workers run as an unprivileged user
        site_dir = tmp / "site"
        site_dir.mkdir()
        site_path = big_site(site_dir, args.nodes)
        state = tmp / "state"
        site = load_site(site_path, StateDir(state).site_cache)  # serve then finds it cached
        store = Store.open(state)
        for node in site.nodes:
            store.enroll(node.name)
        store.close()
        step = max(len(site.nodes) // MACS, 1)
        macs = [site.nodes[i * step].macs[0].replace(":", "-") for i in range(MACS)]
        (tmp / "boot-files").mkdir()
        with provisioner_serve(
            site_path, state, tmp / "boot-files", args.workers, args.threads
        ) as port:
            urls = [f"http://127.0.0.1:{port}/boot/{mac}.ipxe" for mac in macs]
            ab(urls, 1000, CLIENTS)  # warm up every worker
            started = time.perf_counter()
            p99, rate, done = ab(urls, args.requests, CLIENTS)
            wall = time.perf_counter() - started
        # serve stopped: every worker flushed its events
        store = Store.open(state)
        with store.reading() as s:
            events = s.query(EventRow).filter(EventRow.kind == EventKind.BOOT_SCRIPT.value).count()
        store.close()
        expected = done + 1000
        print(f"{args.nodes}-node site, {CLIENTS} clients (ab -k), {done} requests in {wall:.1f} s")
        print(f"  provisioner serve: {rate:.0f} req/s, p99 {p99:.0f} ms")
        print(f"  boot events in the store after stop: {events} of {expected} requests")
        reference = None
        if _have("nginx"):
            script = tmp / "www" / "boot.ipxe"
            script.parent.mkdir()
            script.write_text("#!ipxe\n" + "x" * 300 + "\n")
            script.parent.chmod(0o755)
            with nginx(script.parent, tmp) as nport:
                ref_urls = [f"http://127.0.0.1:{nport}/files/boot.ipxe"] * MACS
                ab(ref_urls, 1000, CLIENTS)
                reference, ref_rate, _ = ab(ref_urls, args.requests, CLIENTS)
            print(f"  nginx static file: {ref_rate:.0f} req/s, p99 {reference:.0f} ms")
        record(
            f"boot script p99, {args.nodes:,} nodes, {CLIENTS} clients",
            p99,
            "ms",
            f"< {GOAL_MS:g} ms",
            p99 < GOAL_MS,
            reference=reference,
            reference_name="nginx static file",
            note=f"{rate:.0f} req/s",
        )
        record(
            "boot events recorded",
            events,
            "events",
            f"= {expected} requests",
            events == expected,
        )


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Several boot servers on one PostgreSQL: transitions/s, boot script p99, takeover time.

Starts Debian's PostgreSQL in a temporary folder (tests/postgres.py), enrols N
nodes of a generated site (benchmarks/render_kickstarts.py's, 198.18.0.0/16, no
traffic sent), then, with I instances as separate processes on the one database:

- transitions per second: each instance drives its share of the nodes through
  the seven transitions from enrolled to active (each one transaction with its
  event, the row locked);
- boot script p99: each instance's boot route (the Flask app of `serve`, called
  in-process: no sockets) serves scripts for random nodes, an event recorded each;
- takeover: 1,000 nodes in flight held by an instance that stopped heartbeating;
  the others find them (pipeline/takeover.py's survey) and take each reservation
  over; the time until every one is held by a live instance.

    python3 benchmarks/shared_db.py [--nodes 10000] [--instances 4] [--in-flight 1000]
                                    [--drive N] [--boot-scripts 2000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.render_kickstarts import generated_site  # noqa: E402
from provisioner.errors import NodeReserved  # noqa: E402
from provisioner.inventory import load_site  # noqa: E402
from provisioner.state import schema  # noqa: E402
from provisioner.state.servers import Servers  # noqa: E402
from provisioner.state.store import EventRow, NodeRow, Store, make_engine, utcnow  # noqa: E402
from tests.postgres import postgres_cluster  # noqa: E402

TO_ACTIVE = ("manage", "provision", "boot", "install", "installed", "configure", "activate")


def _enrol(url: str, names: list[str], state: str = "enrolled") -> None:
    """Bulk set-up (not measured): the nodes and their enrol events in one transaction."""
    store, now = Store(url), utcnow()
    with store.writing() as s:
        s.add_all(NodeRow(name=n, state=state, created_at=now, updated_at=now, state_since=now,
                          build_mode=False) for n in names)  # fmt: skip
        s.flush()
        s.add_all(EventRow(node=n, at=now, kind="transition", event="enroll", to_state=state,
                           message="", actor="bench") for n in names)  # fmt: skip
    store.close()


def _drive(url: str, names: list[str]) -> None:
    store = Store(url)
    for name in names:
        for event in TO_ACTIVE:
            store.transition(name, event, actor="bench")
    store.close()


def _boot_scripts(url: str, site_path: str, state_dir: str, macs: list[str], out: object) -> None:
    from provisioner.bootserver.app import create_app
    from provisioner.bootserver.context import ServerContext
    from provisioner.inventory.source import SiteSource
    from provisioner.state.tokens import DeployTokens

    store = Store(url)
    ctx = ServerContext(sites=SiteSource(Path(site_path)), store=store,
                        tokens=DeployTokens.from_state_dir(Path(state_dir)),
                        boot_files_dir=Path(state_dir), state_dir=Path(state_dir))  # fmt: skip
    client = create_app(ctx).test_client()
    took = []
    for mac in macs:
        start = time.perf_counter()
        reply = client.get(f"/boot/{mac}.ipxe")
        took.append(time.perf_counter() - start)
        assert reply.status_code == 200, reply.data
    out.put(took)  # type: ignore[attr-defined]
    store.close()


def _take_over(url: str, name: str, names: list[str], done: object, finish: object) -> None:
    """One partner; it stays alive until all are done (a process that exits leaves
    reservations the others may rightly take over: its pid is gone)."""
    store = Store(url)
    store.server = name
    servers = Servers(store)
    servers.register(name, ["main"], "http://bench")
    beating = threading.Event()

    def beat() -> None:  # alive while it works, as serve's heartbeat thread keeps it
        while not beating.wait(1.0):
            servers.heartbeat(name)

    threading.Thread(target=beat, daemon=True).start()
    taken = 0
    mine = store.takeable(names)
    random.shuffle(mine)  # partners start at different nodes, as their scans would
    for node in mine:
        try:
            store.reserve(node, "resume", owner=name)
            taken += 1
        except NodeReserved:  # another instance took it first
            pass
    done.put(taken)  # type: ignore[attr-defined]
    finish.wait(300)  # type: ignore[attr-defined]
    beating.set()
    store.close()


def _parallel(target: object, args: list[tuple[object, ...]]) -> float:
    procs = [multiprocessing.Process(target=target, args=a) for a in args]  # type: ignore[arg-type]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0, f"{p.name} exited {p.exitcode}"
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--in-flight", type=int, default=1_000)
    parser.add_argument("--boot-scripts", type=int, default=2_000, help="per instance")
    parser.add_argument("--drive", type=int, help="nodes driven to active [default: all]")
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, postgres_cluster() as pg:
        site_path = generated_site(Path(tmp), a.nodes)
        site = load_site(site_path)
        names = [n.name for n in site.nodes]
        url = pg.database()
        engine = make_engine(url)
        schema.upgrade(engine)
        engine.dispose()
        _enrol(url, names)
        driven = names[: a.drive or len(names)]
        shares = [(url, driven[i :: a.instances]) for i in range(a.instances)]
        elapsed = _parallel(_drive, shares)  # type: ignore[arg-type]
        count = len(driven) * len(TO_ACTIVE)
        print(f"transitions: {count / elapsed:,.0f}/s ({count:,} by {a.instances} instances "
              f"on one PostgreSQL in {elapsed:.1f} s)")  # fmt: skip

        queue: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
        macs = [n.primary_mac for n in site.nodes]
        args = [(url, str(site_path), tmp, random.choices(macs, k=a.boot_scripts), queue)
                for _ in range(a.instances)]  # fmt: skip
        procs = [multiprocessing.Process(target=_boot_scripts, args=x) for x in args]
        for p in procs:
            p.start()
        took = sorted(t for _ in procs for t in queue.get())
        for p in procs:
            p.join()
        p99 = took[int(len(took) * 0.99) - 1]
        print(f"boot script: p99 {p99 * 1000:.1f} ms, median {took[len(took) // 2] * 1000:.1f} "
              f"ms ({len(took):,} scripts, {a.instances} instances at once)")  # fmt: skip

        flying = [f"flight{i}" for i in range(a.in_flight)]
        _enrol(url, flying, state="booting")
        dead = Store(url, server_timeout=timedelta(seconds=0.5))
        dead.server = "dead"
        Servers(dead).register("dead", ["main"], "http://bench")
        for node in flying:
            dead.reserve(node, "provision", owner="dead")
        dead.close()
        time.sleep(0.6)  # silent past its limit
        done: multiprocessing.Queue[int] = multiprocessing.Queue()
        finish = multiprocessing.Event()
        partners = [
            multiprocessing.Process(target=_take_over,
                                    args=(url, f"partner{i}", flying, done, finish))
            for i in range(a.instances - 1)
        ]  # fmt: skip
        start = time.perf_counter()
        for p in partners:
            p.start()
        taken = sum(done.get() for _ in partners)
        elapsed = time.perf_counter() - start
        finish.set()
        for p in partners:
            p.join()
        print(f"takeover: {taken:,} nodes in flight taken over by {len(partners)} partners "
              f"in {elapsed:.1f} s")  # fmt: skip
        assert taken == a.in_flight, f"{a.in_flight - taken} nodes left behind"


if __name__ == "__main__":
    main()

"""Every boot-script request to a running `provisioner serve` is recorded (issue 20).

The HTTP workers answer from an in-memory copy of the node rows and write boot
events in batches from one thread each. Under a bounded load (parallel clients
spread over the workers) every request must still become exactly one
BOOT_SCRIPT event of its node: counted while the server runs and again after it
stopped. A build-mode change made through the store reaches the next request
(the store's change beacon), with no wait.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from pathlib import Path

import pytest
import requests
from bootserver_support import Serve, wait_for

from provisioner.inventory import load_site
from provisioner.settings import StateDir
from provisioner.state.machine import EventKind
from provisioner.state.store import Store

pytestmark = pytest.mark.functional

CLIENTS = 20
PER_CLIENT = 50


def _boot_event_counts(state: Path, names: list[str]) -> Counter[str]:
    store = Store.open(state)
    try:
        return Counter(
            {n: sum(e.kind == EventKind.BOOT_SCRIPT for e in store.events(n)) for n in names}
        )
    finally:
        store.close()


def test_every_boot_script_request_is_one_event(site_dir: Path) -> None:
    site = load_site(site_dir / "site.yaml")
    state = StateDir(site_dir / "state")
    store = Store.open(state.root)
    for node in site.nodes:
        store.enroll(node.name)
    store.close()
    names = [n.name for n in site.nodes]
    macs = {n.name: n.macs[0].replace(":", "-") for n in site.nodes}
    serve = Serve(
        [], site_dir / "site.yaml", state.root, "--no-dhcp", "--no-tftp",
        "--http-bind=127.0.0.1:0", "--no-api", "--workers=2", "--threads=8",
    )  # fmt: skip
    try:
        serve.wait_log("http: serving on")
        port = re.search(r"http: serving on 127\.0\.0\.1:(\d+)", serve.log())
        assert port
        url = f"http://127.0.0.1:{port.group(1)}"
        sent: Counter[str] = Counter()
        lock = threading.Lock()
        failures: list[str] = []

        def client(i: int) -> None:
            mine: Counter[str] = Counter()
            with requests.Session() as http:
                for j in range(PER_CLIENT):
                    name = names[(i + j) % len(names)]
                    reply = http.get(f"{url}/boot/{macs[name]}.ipxe", timeout=30)
                    if reply.status_code != 200:
                        failures.append(f"{name}: {reply.status_code}")
                    mine[name] += 1
            with lock:
                sent.update(mine)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures
        assert sum(sent.values()) == CLIENTS * PER_CLIENT
        wait_for(
            "every boot event written",
            lambda: _boot_event_counts(state.root, names) == sent,
            timeout=30,
        )

        # build mode on through the store: the very next request gets the installer
        store = Store.open(state.root)
        try:
            store.start_build_mode("cmp1")
        finally:
            store.close()
        cmp1 = next(n for n in site.nodes if n.name == "cmp1")
        # from the node's own address (boot_addresses: fixed): here loopback is not it,
        # so the install script is refused, which shows the worker saw build mode
        reply = requests.get(f"{url}/boot/{macs['cmp1']}.ipxe", timeout=10)
        assert reply.status_code == 403, (cmp1.ip, reply.text)
    finally:
        assert serve.stop() == 0
    counts = _boot_event_counts(state.root, names)
    assert counts == sent  # nothing lost or doubled at shutdown either
    assert "dropped" not in serve.log() and "not recorded" not in serve.log()

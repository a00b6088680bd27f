"""Fixtures for the hand-off tests: a lab copy of the example site on 203.0.113.0/24,
a state store, and helpers that walk a node to a state the way the pipeline does."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner import programs
from provisioner.inventory import Site, load_site
from provisioner.state.machine import NodeState
from provisioner.state.store import Store

#: events that walk a fresh node to each state of a deployment
PATH_TO: dict[NodeState, list[str]] = {
    NodeState.READY: ["manage"],
    NodeState.INSTALLING: ["manage", "provision", "boot", "install"],
    NodeState.CONFIGURING: ["manage", "provision", "boot", "install", "installed", "configure"],
    NodeState.ACTIVE: [
        *["manage", "provision", "boot", "install", "installed", "configure", "activate"]
    ],
}


def edit_site(site_dir: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    path = site_dir / "site.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def lab_site_dir(site_dir: Path) -> Path:
    """The example site moved to 203.0.113.0/24 (usable inside our network namespaces)."""
    path = site_dir / "site.yaml"
    text = path.read_text().replace("192.0.2.", "203.0.113.")
    path.write_text(text.replace("2.0.192.in-addr.arpa", "113.0.203.in-addr.arpa"))

    def settings(data: dict[str, Any]) -> None:
        # the daemons that check the files here are Debian's: the profile says so
        for profile in data["profiles"].values():
            profile["os_family"] = "debian"
        data["roles"]["controller"]["settings"] = {
            "vrrp_interface": "pv7eth",
            "vrrp_check_script": "/bin/true",
            "corosync_keyfile": str(site_dir / "corosync-authkey"),
            "glance_store": "swift",
        }

    edit_site(site_dir, settings)
    return site_dir


@pytest.fixture
def lab_site(lab_site_dir: Path) -> Site:
    return load_site(lab_site_dir / "site.yaml")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    st = Store.open(tmp_path / "state")
    yield st
    st.close()


def walk(store: Store, name: str, state: NodeState) -> None:
    store.enroll(name)
    for event in PATH_TO[state]:
        store.transition(name, event, actor="test")
    assert store.get(name).state == state


def run(
    cmd: list[str], timeout: float = 60, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(programs.command(cmd), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


@contextmanager
def netns(prefix: str = "pv7") -> Iterator[str]:
    """A network namespace named with our prefix and a random suffix, always removed."""
    name = f"{prefix}{secrets.token_hex(3)}"
    run(["ip", "netns", "add", name])
    try:
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        yield name
    finally:
        subprocess.run(
            programs.command(["ip", "netns", "del", name]), capture_output=True, timeout=30
        )


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


def bridge_lab(site: Site, nodes: list[str], stack: ExitStack) -> dict[str, str]:
    """A hub namespace with a bridge (203.0.113.99), one namespace per node plugged into it
    on interface pv7eth with the node's address. Returns node -> namespace (and "hub");
    everything is removed when ``stack`` closes."""
    hub = stack.enter_context(netns())
    run(["ip", "-n", hub, "link", "add", "br0", "type", "bridge"])
    run(["ip", "-n", hub, "addr", "add", "203.0.113.99/24", "dev", "br0"])
    run(["ip", "-n", hub, "link", "set", "br0", "up"])
    spaces = {}
    for node in nodes:
        ns = stack.enter_context(netns())
        outside = f"pv7v{secrets.token_hex(4)}"
        run(["ip", "link", "add", outside, "type", "veth", "peer", "name", "pv7eth", "netns", ns])
        run(["ip", "link", "set", outside, "netns", hub])
        run(["ip", "-n", hub, "link", "set", outside, "master", "br0", "up"])
        run(["ip", "-n", ns, "addr", "add", f"{site.node(node).ip}/24", "dev", "pv7eth"])
        run(["ip", "-n", ns, "link", "set", "pv7eth", "up"])
        spaces[node] = ns
    spaces["hub"] = hub
    return spaces


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str | Callable[[], str] = "condition"
) -> float:
    """Seconds until predicate() held; fails after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"{what() if callable(what) else what}: not within {timeout}s")

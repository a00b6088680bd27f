"""Takeover between boot servers sharing one database (issue 22), on SQLite and PostgreSQL.

Server A drives ctl1 and dies mid-deployment like ``kill -9``: it releases nothing
and stops heartbeating. Server B, serving the same network, sees the node held by
a dead server, takes the reservation over and resumes from the recorded step: the
node ends active with exactly the calls of one uninterrupted deployment (one power
cycle) and every hook run once. While nobody serves the network, the node is reported.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from provisioner.bootserver.app import create_app
from provisioner.bootserver.context import ServerContext
from provisioner.errors import NodeReserved
from provisioner.inventory import load_site
from provisioner.inventory.source import SiteSource
from provisioner.pipeline.fakes import FakeBackends
from provisioner.pipeline.hooks import HookRunner
from provisioner.pipeline.runner import Pipeline
from provisioner.pipeline.takeover import survey
from provisioner.state.machine import NodeState
from provisioner.state.servers import Servers
from provisioner.state.store import Store
from provisioner.state.tokens import DeployTokens
from tests.unit.pipeline.simsite import (
    HAPPY_CALLS,
    HOOKS,
    NODE,
    TIMEOUTS,
    Crash,
    CrashingStore,
    Sim,
    World,
    write_site,
)
from tests.unit.pipeline.test_runner_resume import ALL_HOOKS, at_step

TIMEOUT = timedelta(seconds=1)


class DyingStore(CrashingStore):
    """Server A's store: once it crashed, the process is gone and releases nothing."""

    dead = False

    def set_step(self, name: str, step: str | None, actor: str = "") -> None:
        try:
            super().set_step(name, step, actor)
        except Crash:
            self.dead = True
            raise

    def release(self, name: str, token: str) -> None:
        if not self.dead:
            super().release(name, token)


@pytest.fixture
def shared(site_dir: Path, tmp_path: Path, db_url: str) -> Iterator[Sim]:
    """The simulated site with its boot server and pipelines on the shared database."""
    write_site(site_dir, HOOKS)
    state_dir = tmp_path / "keys"
    web_store = Store(db_url)
    ctx = ServerContext(
        sites=SiteSource(site_dir / "site.yaml"),
        store=web_store,
        tokens=DeployTokens.from_state_dir(state_dir),
        boot_files_dir=tmp_path / "boot",
        state_dir=state_dir,
    )
    site = load_site(site_dir / "site.yaml")
    world = World(create_app(ctx).test_client(), web_store, site)
    store_a = DyingStore(db_url, server_timeout=TIMEOUT)
    stores: list[Store] = [web_store, store_a]
    sim = Sim(site_dir, state_dir, site, world, FakeBackends(listener=world.hear), store_a, stores)
    yield sim
    for s in stores:
        s.close()


def _pipeline(sim: Sim, store: Store, actor: str) -> Pipeline:
    """A server's pipeline; its hooks keep their files in the (shared) state dir."""
    hooks = HookRunner(lambda: sim.site, store, sim.state_dir, sim.site_dir / "site.yaml")
    return Pipeline(store, lambda: sim.site, sim.backends, TIMEOUTS, clock=sim.world.clock,
                    sleep=sim.world.sleep, actor=actor, hooks=hooks)  # fmt: skip


def test_a_partner_takes_over_a_dead_servers_node_from_its_step(shared: Sim, db_url: str) -> None:
    store_a = shared.store
    store_a.server = "A"
    Servers(store_a).register("A", ["main"], "http://127.0.0.1:1")
    shared.machine()
    store_a.crash_at = at_step("wait for kickstart")  # past the power cycle
    with pytest.raises(Crash):
        _pipeline(shared, store_a, "A").provision(NODE)

    store_b = Store(db_url, server_timeout=TIMEOUT)
    shared.stores.append(store_b)
    store_b.server = "B"
    servers = Servers(store_b)
    # A is silent but not yet past the timeout: its node is not B's to take
    assert survey(store_b, shared.site, servers, ["main"]).to_take == []
    with pytest.raises(NodeReserved, match="reserved by A"):
        store_b.reserve(NODE, "resume", owner="B")
    time.sleep(TIMEOUT.total_seconds() + 0.2)
    found = survey(store_b, shared.site, servers, ["main"])
    assert (found.to_take, found.unserved) == ([NODE], {"main": [NODE]})  # nobody alive on main
    servers.register("B", ["main"], "http://127.0.0.1:2")
    found = survey(store_b, shared.site, servers, ["main"])
    assert (found.to_take, found.unserved) == ([NODE], {})
    assert [(s.name, s.alive) for s in servers.all()] == [("A", False), ("B", True)]

    rec = _pipeline(shared, store_b, "B").resume(NODE)

    assert (rec.state, rec.reason) == (NodeState.ACTIVE, None)
    assert shared.backends.log() == HAPPY_CALLS  # one power cycle, one DNS and DHCP entry
    shared.store = store_b
    assert shared.hook_runs() == ALL_HOOKS
    notes = [e.message for e in store_b.events(NODE) if "took over" in e.message]
    assert len(notes) == 1 and "server A" in notes[0], notes
    assert store_b.reservation(NODE) is None


def test_a_server_leaves_another_networks_node_alone(sim: Sim) -> None:
    """One of several servers (serve --networks rack2) asked for a node of main."""
    from provisioner.pipeline.operations import Operations

    operations = Operations(sim.pipeline())
    operations.networks = frozenset({"rack2"})
    [result] = operations.provision([NODE])
    assert result.reason == (
        f"node {NODE}: on network main, served by another boot server (this: rack2)"
    )
    assert sim.backends.log() == [] and sim.store.find(NODE) is None

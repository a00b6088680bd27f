"""The simulated site of the Pipeline's unit tests (see simsite.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.bootserver.app import create_app
from provisioner.bootserver.context import ServerContext
from provisioner.inventory import load_site
from provisioner.inventory.source import SiteSource
from provisioner.pipeline.fakes import FakeBackends
from provisioner.state.store import Store
from provisioner.state.tokens import DeployTokens
from tests.unit.pipeline.simsite import HOOKS, CrashingStore, Sim, World, write_site


@pytest.fixture
def sim(site_dir: Path, tmp_path: Path) -> Iterator[Sim]:
    write_site(site_dir, HOOKS)
    state_dir = tmp_path / "state"
    web_store = Store.open(state_dir)
    sources = SiteSource(site_dir / "site.yaml")
    ctx = ServerContext(
        sites=sources,
        store=web_store,
        tokens=DeployTokens.from_state_dir(state_dir),
        boot_files_dir=tmp_path / "boot",
    )
    site = load_site(site_dir / "site.yaml")
    world = World(create_app(ctx).test_client(), web_store, site)
    backends = FakeBackends(listener=world.hear)
    store = CrashingStore.open(state_dir)
    stores: list[Store] = [web_store, store]
    try:
        yield Sim(site_dir, state_dir, site, world, backends, store, stores)
    finally:
        for st in stores:
            st.close()

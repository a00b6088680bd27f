"""SiteBackends: one power driver per node per deployment, with the site's power settings."""

from __future__ import annotations

from pathlib import Path

from provisioner.inventory import Site, load_site
from provisioner.pipeline.factory import build_operations
from provisioner.pipeline.site_backends import SiteBackends
from provisioner.state.store import Store


def _site(site_dir: Path, extra: str = "") -> Site:
    path = site_dir / "site.yaml"
    if extra:
        path.write_text(path.read_text() + extra)
    return load_site(path)


def test_one_driver_per_node_per_deployment(site_dir: Path, tmp_path: Path) -> None:
    site = _site(site_dir)
    deployment = {"ctl1": "first", "ctl2": "other"}
    backends = SiteBackends(tmp_path, deployment_of=deployment.get)
    ctl1 = site.node("ctl1")
    driver = backends.driver(site, ctl1)
    assert backends.driver(site, ctl1) is driver  # every action of the deployment
    assert backends.driver(site, site.node("ctl2")) is not driver  # per node
    deployment["ctl1"] = "second"  # e.g. a resume after the BMC's password was fixed
    assert backends.driver(site, ctl1) is not driver
    del deployment["ctl1"]  # outside a deployment nothing is kept
    assert backends.driver(site, ctl1) is not backends.driver(site, ctl1)


def test_drivers_get_the_sites_power_settings(site_dir: Path, tmp_path: Path) -> None:
    default = SiteBackends(tmp_path).driver(_site(site_dir), _site(site_dir).node("ctl1"))
    assert default.settings.timeout == 30 and default.settings.min_interval == 0
    site = _site(site_dir, "pipeline:\n  bmc_timeout: 90\n  bmc_min_interval: 0.5\n")
    driver = SiteBackends(tmp_path).driver(site, site.node("ctl1"))
    assert driver.settings.timeout == 90 and driver.settings.min_interval == 0.5


def test_the_wiring_keys_a_deployment_by_the_nodes_reservation(
    site_dir: Path, tmp_path: Path
) -> None:
    site = _site(site_dir)
    store = Store.open(tmp_path)
    try:
        ops = build_operations(store, lambda: site, site_dir / "site.yaml", tmp_path, "test")
        backends = ops.pipeline.backends
        assert isinstance(backends, SiteBackends)
        ctl1 = site.node("ctl1")
        store.enroll("ctl1")
        with store.reserved("ctl1", "provision"):
            driver = backends.driver(site, ctl1)
            assert backends.driver(site, ctl1) is driver
        with store.reserved("ctl1", "resume"):
            assert backends.driver(site, ctl1) is not driver
    finally:
        store.close()

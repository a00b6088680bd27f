"""driver_for: the backend follows bmc.driver; secrets resolved, never shown."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from provisioner.errors import SecretError, UnknownNode
from provisioner.inventory import load_site
from provisioner.power import driver_for
from provisioner.power.ipmi import IpmiPower
from provisioner.power.redfish import RedfishPower


def test_ipmi_node_gets_the_ipmi_driver_with_its_bmc(site_dir: Path) -> None:
    site = load_site(site_dir / "site.yaml")
    driver = driver_for(site, "ctl1")
    assert isinstance(driver, IpmiPower)
    assert driver.endpoint.label == "127.0.0.1:6230"
    assert driver.node == "ctl1"
    secret = (site_dir / "secrets" / "bmc-password").read_text().strip()
    assert driver.endpoint.password.get_secret_value() == secret
    assert secret not in repr(driver.endpoint)


def test_redfish_and_virtual_drivers(site_dir: Path) -> None:
    text = (site_dir / "site.yaml").read_text()
    text = text.replace(
        "bmc: {driver: ipmi, address: 127.0.0.1, port: 6231",
        "bmc: {driver: redfish, address: 127.0.0.1, port: 6231",
        1,
    )
    text = text.replace(
        "bmc: {driver: ipmi, address: 127.0.0.1, port: 6232",
        "bmc: {driver: virtual, address: 127.0.0.1, port: 6232",
        1,
    )
    (site_dir / "site.yaml").write_text(text)
    site = load_site(site_dir / "site.yaml")
    assert isinstance(driver_for(site, "ctl2"), RedfishPower)
    assert isinstance(driver_for(site, "ctl3"), IpmiPower)  # the virtual BMC speaks IPMI


def test_missing_password_names_the_node_and_field(site_dir: Path) -> None:
    text = (site_dir / "site.yaml").read_text().replace(", generate: password}", "}")
    (site_dir / "site.yaml").write_text(text)  # an operator's file, not generated
    site = load_site(site_dir / "site.yaml")
    (site_dir / "secrets" / "bmc-password").unlink()
    with pytest.raises(
        SecretError, match=r"node ctl1: bmc.password: secret file .* does not exist"
    ):
        driver_for(site, "ctl1")


def test_unknown_node(site_dir: Path) -> None:
    site = load_site(site_dir / "site.yaml")
    with pytest.raises(UnknownNode):
        driver_for(site, "nope")


def test_a_generated_password_is_made_on_first_use_mode_0600(site_dir: Path) -> None:
    site = load_site(site_dir / "site.yaml")
    path = site_dir / "secrets" / "bmc-password"
    path.unlink()  # as on a fresh clone of the example site
    driver = driver_for(site, "ctl1")
    assert isinstance(driver, IpmiPower)
    made = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(made) == 20 and driver.endpoint.password.get_secret_value() == made
    assert driver_for(site, "ctl2").endpoint.password.get_secret_value() == made  # kept

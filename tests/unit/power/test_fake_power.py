"""The fake BMC driver: state in the state dir shared across drivers (processes), faults
that fail the way real BMCs do, through the base class's retries and timeouts."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from provisioner.errors import (
    BmcAuthError,
    BmcTimeout,
    BmcTransientError,
    BmcUnreachable,
    ConfigError,
)
from provisioner.inventory import Site, load_site
from provisioner.power import PowerSettings, driver_for
from provisioner.power.fake import FakeBmcs, FakePower

FAST = PowerSettings(timeout=2.0, retries=0, backoff=0.01, poll_interval=0.01)


@pytest.fixture
def site(site_dir: Path) -> Site:
    path = site_dir / "site.yaml"
    data = yaml.safe_load(path.read_text())
    data["nodes"][0]["bmc"]["driver"] = "fake"  # ctl1
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_site(path)


def test_fake_bmc_is_selected_by_the_inventory_and_needs_the_state_dir(
    site: Site, tmp_path: Path
) -> None:
    assert isinstance(driver_for(site, "ctl1", FAST, tmp_path), FakePower)
    with pytest.raises(ConfigError, match=r"node ctl1: bmc\.driver fake .* state directory"):
        driver_for(site, "ctl1")


def test_power_and_one_time_boot_device_behave_like_firmware(site: Site, tmp_path: Path) -> None:
    driver = driver_for(site, "ctl1", FAST, tmp_path)
    assert driver.power_state() == "off"
    driver.set_boot_device("network", persistent=False, uefi=True)
    driver.power_cycle()
    state = FakeBmcs(tmp_path).read("ctl1")
    assert (state.power, state.last_boot, state.boot) == ("on", "network", None)  # used up
    driver.set_boot_device("disk", persistent=True, uefi=False)
    driver.power_cycle()  # off, then on: the persistent device stays
    state = FakeBmcs(tmp_path).read("ctl1")
    assert state.last_boot == "disk"
    assert state.boot == {"device": "disk", "persistent": True, "uefi": False}
    assert state.history == (
        "boot network once uefi",
        "power on",
        "boot disk persistent bios",
        "power off",
        "power on",
    )
    # a new driver (another command, another process) sees the same BMC
    assert driver_for(site, "ctl1", FAST, tmp_path).power_state() == "on"


def test_the_state_is_shared_across_processes(site: Site, site_dir: Path, tmp_path: Path) -> None:
    driver_for(site, "ctl1", FAST, tmp_path).power_on()
    code = (
        "import sys; from pathlib import Path; from provisioner.inventory import load_site;"
        "from provisioner.power import driver_for;"
        "site = load_site(Path(sys.argv[1]));"
        "d = driver_for(site, 'ctl1', None, Path(sys.argv[2]));"
        "print(d.power_state()); d.power_off()"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(site_dir / "site.yaml"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "on"
    assert driver_for(site, "ctl1", FAST, tmp_path).power_state() == "off"


@pytest.mark.parametrize(
    ("fault", "error", "detail"),
    [
        ("unreachable", BmcUnreachable, "power status: no answer (fake BMC fault)"),
        ("auth", BmcAuthError, "power status: credentials rejected (fake BMC fault)"),
        ("busy", BmcTransientError, "power status: BMC busy (fake BMC fault)"),
    ],
)
def test_faults_fail_every_command_naming_node_and_bmc(
    site: Site, tmp_path: Path, fault: str, error: type[Exception], detail: str
) -> None:
    FakeBmcs(tmp_path).set_fault("ctl1", fault)
    driver = driver_for(site, "ctl1", FAST, tmp_path)
    with pytest.raises(error) as caught:
        driver.power_on()
    assert str(caught.value) == f"node ctl1: BMC 127.0.0.1:6230: {detail}"
    assert FakeBmcs(tmp_path).read("ctl1").power == "off"  # nothing happened
    FakeBmcs(tmp_path).set_fault("ctl1", None)
    driver.power_on()
    assert driver.power_state() == "on"


def test_transient_faults_are_retried_within_the_timeout(site: Site, tmp_path: Path) -> None:
    FakeBmcs(tmp_path).set_fault("ctl1", "busy")
    settings = PowerSettings(timeout=5.0, retries=2, backoff=0.05)
    started = time.monotonic()
    with pytest.raises(BmcTransientError):
        driver_for(site, "ctl1", settings, tmp_path).power_state()
    assert time.monotonic() - started >= 0.05 + 0.1  # two backoffs, then it gave up


def test_a_slow_bmc_hits_the_per_call_timeout(site: Site, tmp_path: Path) -> None:
    FakeBmcs(tmp_path).set_fault("ctl1", "slow", delay=3.0)
    settings = PowerSettings(timeout=0.3, retries=0)
    started = time.monotonic()
    with pytest.raises(BmcTimeout, match=r"node ctl1: .*no answer within the 0\.3s timeout"):
        driver_for(site, "ctl1", settings, tmp_path).power_state()
    assert time.monotonic() - started < 2.0


def test_an_unknown_fault_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="node ctl1: fake BMC fault 'fire' is not one of"):
        FakeBmcs(tmp_path).set_fault("ctl1", "fire")


def test_the_password_is_never_written(site: Site, site_dir: Path, tmp_path: Path) -> None:
    driver_for(site, "ctl1", FAST, tmp_path).power_cycle()
    secret = (site_dir / "secrets" / "bmc-password").read_text().strip()
    for path in (tmp_path / "fake-bmc").iterdir():
        assert secret not in path.read_text()

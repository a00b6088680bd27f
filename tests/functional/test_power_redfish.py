"""The Redfish driver against sushy-tools' emulator (a Redfish BMC no one here wrote).

The emulator's fake system applies a power change 1-11 s after the request, as
slow real BMCs do, so the driver has to wait for the state, not assume it.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from power_support import free_ports
from pydantic import SecretStr

from provisioner import programs
from provisioner.power import BmcAuthError, BmcTimeout, BmcUnreachable
from provisioner.power.base import BmcEndpoint, PowerSettings
from provisioner.power.redfish import RedfishPower

pytestmark = pytest.mark.functional

PASSWORD = "redfish-Secret-9"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp: Path = tmp_path_factory.mktemp("redfish")
    (port,) = free_ports(1, kind=socket.SOCK_STREAM)
    htpasswd = tmp / "htpasswd"
    htpasswd.write_text("admin:" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt()).decode())
    (tmp / "emulator.conf").write_text(f"SUSHY_EMULATOR_AUTH_FILE = {str(htpasswd)!r}\n")
    binary = programs.path("sushy-emulator")
    proc = subprocess.Popen(
        [binary, "--fake", "-i", "127.0.0.1", "-p", str(port), "--config", "emulator.conf"],
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "emulator.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp / "emulator.log").read_text()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/redfish/v1/", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # answering (401 without credentials is fine)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def redfish(port: int, password: str = PASSWORD, timeout: float = 30.0) -> RedfishPower:
    endpoint = BmcEndpoint("rf1", "redfish", "http://127.0.0.1", port, "admin", SecretStr(password))
    return RedfishPower(endpoint, PowerSettings(timeout=timeout))


def test_power_off_and_on_wait_for_the_state(emulator: int) -> None:
    drv = redfish(emulator)
    drv.validate()
    drv.power_off()
    assert drv.power_state() == "off"
    drv.power_on()
    assert drv.power_state() == "on"


def test_boot_device_and_mode(emulator: int) -> None:
    """The emulator models target and mode; it ignores BootSourceOverrideEnabled
    (its code: "we always set the boot device frequency to continuous"), so
    once-vs-persistent is checked against the virtual BMC, not here."""
    drv = redfish(emulator)
    drv.set_boot_device("network", persistent=False, uefi=True)
    first = drv.boot_device()
    assert (first["device"], first["uefi"]) == ("network", True)
    drv.set_boot_device("disk", persistent=True, uefi=False)
    second = drv.boot_device()
    assert (second["device"], second["uefi"], second["persistent"]) == ("disk", False, True)


def test_wrong_password_and_no_bmc_are_clear_errors(emulator: int) -> None:
    with pytest.raises(BmcAuthError) as info:
        redfish(emulator, password="bad-one", timeout=10).power_state()
    assert f"node rf1: BMC http://127.0.0.1:{emulator}:" in str(info.value)
    assert "bad-one" not in str(info.value)

    (closed,) = free_ports(1, kind=socket.SOCK_STREAM)
    start = time.monotonic()
    with pytest.raises((BmcUnreachable, BmcTimeout)):
        redfish(closed, timeout=5).power_state()
    assert time.monotonic() - start < 5 + 3

"""The IPMI driver against OpenIPMI's ipmi_sim, a BMC simulator no one here wrote.

ipmi_sim hands chassis power and boot device to an external program
(``chassis_control`` in lan.conf). It calls it as ``PROG get power`` /
``PROG set power 1`` / ``PROG set boot pxe`` (no device argument with this
configuration) and reads ``power:<0|1>`` and ``boot:<value>`` lines back; the
program here keeps that state in files, like a chassis would in hardware.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from power_support import driver, free_ports

from provisioner import programs
from provisioner.power import BmcAuthError

pytestmark = pytest.mark.functional

PASSWORD = "sim-Secret-3"

CHASSIS = r"""#!/bin/sh
dir=$(dirname "$0")
echo "$*" >> "$dir/calls.log"
case $1 in get|set|check) ;; *) shift;; esac   # an optional device argument
op=$1; shift
case $op in
get)
  for parm in "$@"; do
    case $parm in
      power) echo "power:$(cat "$dir/power" 2>/dev/null || echo 0)";;
      boot) echo "boot:$(cat "$dir/boot" 2>/dev/null || echo default)";;
      *) echo "Invalid parameter: $parm"; exit 1;;
    esac
  done;;
set)
  while [ $# -gt 1 ]; do
    case $1 in
      power) echo "$2" > "$dir/power";;
      boot) echo "$2" > "$dir/boot";;
      reset) ;;
      *) echo "Invalid parameter: $1"; exit 1;;
    esac
    shift 2
  done;;
*) exit 1;;
esac
"""


def _lan_conf(port: int, script: Path) -> str:
    return f"""name "pv3sim"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 {port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "{script}"
  user 2 true "admin" "{PASSWORD}" admin 10 none md2 md5 straight
"""


EMU = """mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
"""


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    (port,) = free_ports(1)
    chassis = tmp_path / "chassis"
    chassis.mkdir()
    script = chassis / "control.sh"
    script.write_text(CHASSIS)
    script.chmod(0o755)
    (tmp_path / "lan.conf").write_text(_lan_conf(port, script))
    (tmp_path / "sim.emu").write_text(EMU)
    (tmp_path / "state").mkdir()
    proc = subprocess.Popen(
        programs.command(["ipmi_sim", "-c", "lan.conf", "-f", "sim.emu", "-s", "state", "-n"]),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "sim.log").open("wb"),
    )
    try:
        _wait_bound(port, proc)
        yield port, chassis
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_bound(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "ipmi_sim exited"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return  # ipmi_sim holds the port
        time.sleep(0.05)
    raise AssertionError("ipmi_sim did not bind its port")


def test_power_status_on_off_through_ipmi_sim(sim: tuple[int, Path]) -> None:
    port, chassis = sim
    drv = driver("simnode", port, PASSWORD)
    drv.validate()
    assert drv.power_state() == "off"
    drv.power_on()
    assert drv.power_state() == "on"
    assert (chassis / "power").read_text().strip() == "1"  # the chassis saw it
    drv.power_off()
    assert drv.power_state() == "off"
    assert (chassis / "power").read_text().strip() == "0"


def test_boot_device_through_ipmi_sim(sim: tuple[int, Path]) -> None:
    port, chassis = sim
    drv = driver("simnode", port, PASSWORD)
    drv.set_boot_device("network", uefi=True)
    assert (chassis / "boot").read_text().strip() == "pxe"
    assert drv.boot_device()["device"] == "network"
    drv.set_boot_device("disk", persistent=True)
    assert drv.boot_device()["device"] == "disk"
    assert "set boot pxe" in (chassis / "calls.log").read_text()


def test_wrong_password_against_ipmi_sim(sim: tuple[int, Path]) -> None:
    port, _ = sim
    with pytest.raises(BmcAuthError) as info:
        driver("simnode", port, "nope-nope", timeout=10).power_state()
    assert f"node simnode: BMC 127.0.0.1:{port}:" in str(info.value)
    assert "nope-nope" not in str(info.value)

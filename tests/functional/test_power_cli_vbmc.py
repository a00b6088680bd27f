"""`provisioner vbmc serve` as a user runs it: a config file, ipmitool, Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from power_support import free_ports, ipmitool

from provisioner.errors import EXIT_CONFIG

pytestmark = pytest.mark.functional


def _provisioner(tmp_path: Path) -> list[str]:
    return [sys.executable, "-m", "provisioner", "--state-dir", str(tmp_path / "state")]


def test_vbmc_serve_from_a_config_file_and_stop_cleanly(tmp_path: Path) -> None:
    ports = free_ports(2)
    (tmp_path / "pw").write_text("cli-Secret-2\n")
    (tmp_path / "pw").chmod(0o600)
    (tmp_path / "vbmc.yaml").write_text(
        "defaults: {address: 127.0.0.1, user: admin, password: {file: pw}}\n"
        f"bmcs:\n  - {{name: a1, port: {ports[0]}}}\n  - {{name: a2, port: {ports[1]}}}\n"
    )
    proc = subprocess.Popen(
        [*_provisioner(tmp_path), "vbmc", "serve", "--config", str(tmp_path / "vbmc.yaml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"serving 2 virtual BMC(s) on 127.0.0.1:{min(ports)}-{max(ports)}" in line
        ipmitool(ports[0], "cli-Secret-2", "chassis", "power", "on")
        assert "Chassis Power is on" in ipmitool(
            ports[0], "cli-Secret-2", "chassis", "power", "status"
        )
        assert "Chassis Power is off" in ipmitool(
            ports[1], "cli-Secret-2", "chassis", "power", "status"
        )
        assert (tmp_path / "state" / "vbmc" / "a1.json").is_file()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "cli-Secret-2" not in err
    time.sleep(0.2)
    for port in ports:  # the BMC processes are gone: the ports are free again
        assert port in free_ports_exact([port])


def free_ports_exact(ports: list[int]) -> list[int]:
    import socket

    free = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
                free.append(port)
            except OSError:
                pass
    return free


def test_vbmc_config_errors_name_the_entry_and_field(tmp_path: Path) -> None:
    (tmp_path / "vbmc.yaml").write_text(
        "bmcs:\n  - {name: a1, port: notaport, user: admin, password: {env: PV3_NOPE}}\n"
    )
    result = subprocess.run(
        [*_provisioner(tmp_path), "vbmc", "serve", "--config", str(tmp_path / "vbmc.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == EXIT_CONFIG
    assert "bmcs[0] (a1): password: environment variable PV3_NOPE is not set" in result.stderr


def test_vbmc_from_site_then_power_and_bootdev_commands(site_dir: Path) -> None:
    ports = free_ports(10)
    text = (site_dir / "site.yaml").read_text()
    for i, port in enumerate(ports):
        text = text.replace(f"port: {6230 + i},", f"port: {port},")
    (site_dir / "site.yaml").write_text(text)
    base = [sys.executable, "-m", "provisioner", "--site", str(site_dir / "site.yaml")]
    base += ["--state-dir", str(site_dir / "state")]
    serve = subprocess.Popen(
        [*base, "vbmc", "serve", "--from-site"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert serve.stdout is not None
        assert "serving 10 virtual BMC(s)" in serve.stdout.readline()

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*base, *args], capture_output=True, text=True, timeout=120)

        on = run("power", "on", "--role", "compute")
        assert on.returncode == 0, on.stderr
        assert "power on: 3 node(s)" in on.stdout
        status = run("power", "status", "--all")
        assert status.returncode == 0, status.stderr
        rows = {line.split()[1]: line for line in status.stdout.splitlines() if "│ " in line}
        assert all(" on " in rows[n] for n in ("cmp1", "cmp2", "cmp3"))
        assert all(" off " in rows[n] for n in ("ctl1", "net1", "sto2"))

        boot = run("bootdev", "net2", "network")  # net2 is a BIOS node in the example
        assert boot.returncode == 0, boot.stderr
        password = (site_dir / "secrets" / "bmc-password").read_text().strip()
        text = ipmitool(ports[4], password, "chassis", "bootparam", "get", "5")
        assert "Force PXE" in text and "BIOS PC Compatible (legacy) boot" in text
        assert "Options apply to only next boot" in text

        usage = run("power", "status")
        assert usage.returncode == 2 and "exactly one" in usage.stderr
    finally:
        serve.send_signal(signal.SIGINT)
        serve.communicate(timeout=60)
    assert serve.returncode == 0

"""`lab up` names what is missing before it starts anything, and a lab process
that dies is reported by its cause, not by a screen of its log."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from provisioner.lab import preflight
from provisioner.lab.procs import LabProcessError, log_cause, start_detached, wait_for


def test_programs_missing_from_path_are_named_with_their_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: nothing found on PATH
    with pytest.raises(preflight.LabPrerequisiteMissing) as caught:
        preflight.check("netns")
    message = str(caught.value)
    first, *rest = message.splitlines()
    assert first.startswith("lab up: ") and "nothing was started" in first
    assert "  qemu-system-x86_64: runs the lab nodes (Debian package qemu-system-x86)" in rest
    assert any(line.startswith("  named: ") for line in rest)
    assert any(line.startswith("  dnsmasq: ") for line in rest)  # netns mode only
    assert rest[-1].startswith("  install: apt-get install ")
    assert {"qemu-system-x86", "bind9", "dnsmasq-base", "iproute2"} <= set(rest[-1].split())


def test_user_mode_needs_no_namespace_tools() -> None:
    names = {need.what for need in preflight.lab_needs("user")}
    assert "ip" not in names and "dnsmasq" not in names
    assert "qemu-system-x86_64" in names and "named" in names


def test_this_host_has_what_the_lab_needs() -> None:
    # make deps-demo / deps-test install all of it; a missing one is named here
    assert [need.what for need in preflight.missing(preflight.lab_needs("netns"))] == []


def test_a_process_that_dies_is_reported_by_its_error_line_first(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "for i in range(30): print(f'2024-01-01 INFO provisioner.serve: step {i}')\n"
        "print('error: no iPXE binaries in /usr/lib/ipxe (install Debian package ipxe)')\n"
        "sys.exit(1)\n"
    )
    rec = start_detached("serve", [sys.executable, "-c", script], tmp_path / "serve.log", "-c")
    with pytest.raises(LabProcessError) as caught:
        wait_for(rec, lambda: False, 30, "HTTP")
    message = str(caught.value)
    assert message == (
        "lab: serve exited before HTTP: no iPXE binaries in /usr/lib/ipxe "
        f"(install Debian package ipxe) (its log: {tmp_path / 'serve.log'})"
    )
    assert "INFO" not in message


def test_named_log_cause_skips_its_closing_line(tmp_path: Path) -> None:
    log = tmp_path / "bind.log"
    log.write_text(
        "03-Dec-2024 07:54:00.101 starting BIND 9.18\n"
        "03-Dec-2024 07:54:00.200 /lab/bind/named.conf:3: open: /lab/bind/key: file not found\n"
        "03-Dec-2024 07:54:00.201 loading configuration: file not found\n"
        "03-Dec-2024 07:54:00.202 exiting (due to fatal error)\n"
    )
    assert log_cause(str(log)) == "03-Dec-2024 07:54:00.201 loading configuration: file not found"
    (tmp_path / "empty.log").write_text("")
    assert log_cause(str(tmp_path / "empty.log")) == "(its log is empty)"
    assert log_cause(str(tmp_path / "absent.log")) == "(no log)"

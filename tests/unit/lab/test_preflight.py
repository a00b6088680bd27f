"""`lab up` names what is missing before it starts anything, and a lab process
that dies is reported by its cause, not by a screen of its log."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from provisioner import programs
from provisioner_lab import preflight
from provisioner_lab.procs import LabProcessError, log_cause, start_detached, wait_for


def test_missing_programs_are_named_with_their_packages_before_anything_starts() -> None:
    table = [
        *programs.TABLE,
        programs.Program("no-such-qemu", "qemu-system-x86", ("demo",), "runs the lab nodes"),
        programs.Program("no-such-named", "bind9", ("demo",), "the lab's DNS"),
    ]  # fmt: skip
    with pytest.raises(preflight.LabPrerequisiteMissing) as caught:
        preflight.check(table)
    first, *rest = str(caught.value).splitlines()
    assert first.startswith("lab up: 2 prerequisite(s) missing") and "nothing was started" in first
    assert "  no-such-qemu: runs the lab nodes (Debian package qemu-system-x86)" in rest
    assert rest[-1] == "  install: apt-get install bind9 qemu-system-x86"


def test_this_host_has_what_the_lab_needs() -> None:
    # make deps-demo / deps-test install all of it; a missing one is named here
    preflight.check()


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

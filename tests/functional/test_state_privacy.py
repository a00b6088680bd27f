"""The state directory is private to the provisioner's user (issue 18).

A state directory created beforehand the way a package or an operator would
(0755, files 0644) is made owner-only by `provisioner serve` at start; what it
writes while running is owner-only too; its log can be rotated by moving it away
(logrotate's default), and the processes carry on in a new private file.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
import requests
from bootserver_support import Serve, wait_for

from provisioner.settings import StateDir
from provisioner.state.store import Store

pytestmark = pytest.mark.functional


def loose_entries(root: Path) -> list[str]:
    """Everything under ``root`` (itself included) that a group or other user may use."""
    found = []
    for entry in [root, *root.rglob("*")]:
        info = entry.lstat()
        if not stat.S_ISLNK(info.st_mode) and info.st_mode & 0o077:
            found.append(f"{entry.relative_to(root.parent)} {stat.filemode(info.st_mode)}")
    return found


def test_serve_makes_an_existing_0755_state_dir_private(site_dir: Path) -> None:
    state = StateDir(site_dir / "state")
    old_umask = os.umask(0o022)
    state.root.mkdir(mode=0o755)
    Store.open(state.root).close()
    state.db.chmod(0o644)
    state.log.write_text("an old line\n")
    state.api_token.write_text("old-token\n")
    (state.bundle("ctl1") / "scripts").mkdir(parents=True)
    (state.bundle("ctl1") / "MANIFEST").write_text("x\n")
    (state.bundle("ctl1") / "scripts" / "run.sh").write_text("#!/bin/sh\n")
    (state.bundle("ctl1") / "scripts" / "run.sh").chmod(0o755)
    os.chmod(state.bundles, 0o755)
    os.umask(old_umask)
    assert len(loose_entries(state.root)) >= 7  # the starting point really is loose

    serve = Serve(
        [], site_dir / "site.yaml", state.root, "--no-dhcp", "--no-tftp",
        "--http-bind=127.0.0.1:0", "--workers=1", "--threads=2",
    )  # fmt: skip
    try:
        serve.wait_log("http: serving on")
        port = re.search(r"http: serving on 127\.0\.0\.1:(\d+)", serve.log())
        assert port
        url = f"http://127.0.0.1:{port.group(1)}"
        wait_for("the daemon file", state.daemon_file.exists)
        assert loose_entries(state.root) == []
        assert stat.S_IMODE(state.root.stat().st_mode) == 0o700
        assert stat.S_IMODE((state.bundle("ctl1") / "scripts" / "run.sh").stat().st_mode) == 0o700

        # logrotate moves the log away: the next lines go to a new, private file
        state.log.rename(state.root / "provisioner.log.1")
        assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
        assert requests.get(f"{url}/boot/52:54:00:00:02:0b.ipxe", timeout=10).ok
        wait_for("a new log", lambda: state.log.exists() and "ctl1" in state.log.read_text())
        assert stat.S_IMODE(state.log.stat().st_mode) == 0o600
        assert "an old line" in (state.root / "provisioner.log.1").read_text()
        assert loose_entries(state.root) == []
    finally:
        serve.stop()

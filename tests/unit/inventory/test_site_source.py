from __future__ import annotations

import os
from pathlib import Path

from provisioner.inventory.source import SiteSource


def _touch_later(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_follows_edits_and_keeps_the_last_good_site(site_dir: Path) -> None:
    path = site_dir / "site.yaml"
    source = SiteSource(path)
    assert len(source.current().nodes) == 10

    text = path.read_text()
    added = text + (
        '  - name: cmp4\n    role: compute\n    macs: ["52:54:00:00:02:15"]\n'
        "    ip: 192.0.2.21\n    bmc: {driver: ipmi, address: 127.0.0.1, port: 6240, "
        "user: admin, password: {file: secrets/bmc-password}}\n"
    )
    path.write_text(added)
    _touch_later(path)
    assert source.current().node("cmp4").ip.exploded == "192.0.2.21"
    assert source.generation == 1

    path.write_text(added.replace("ip: 192.0.2.21", "ip: 192.0.2.20"))  # duplicate IP
    _touch_later(path)
    site = source.current()
    assert site.node("cmp4").ip.exploded == "192.0.2.21"  # the bad edit was ignored
    assert source.generation == 1

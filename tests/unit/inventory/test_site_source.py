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


def test_secrets_are_resolved_once_per_generation_of_the_site(site_dir: Path) -> None:
    """Every node shares the BMC password file: one read serves them all, until a reload."""
    path = site_dir / "site.yaml"
    source = SiteSource(path)
    site = source.current()
    secret_file = site_dir / "secrets" / "bmc-password"
    first = site.secret(site.node("ctl1").bmc.password, "node ctl1: bmc.password")
    secret_file.write_text("changed-password\n")
    for node in site.nodes:  # the same reference on every node: the value read before
        assert site.secret(node.bmc.password, f"node {node.name}: bmc.password") == first
    path.write_text(path.read_text() + "\n")  # an edit of site.yaml: a new generation
    _touch_later(path)
    reloaded = source.current()
    assert source.generation == 1
    value = reloaded.secret(reloaded.node("ctl1").bmc.password, "node ctl1: bmc.password")
    assert value.get_secret_value() == "changed-password"
    assert "changed-password" not in repr(reloaded)

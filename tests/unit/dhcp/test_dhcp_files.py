"""dhcp/files.py: the one writer of dnsmasq's host files, whole folder (serve) or one
node's entry (the pipeline), and the one code that signals dnsmasq."""

from __future__ import annotations

import os
from pathlib import Path

from provisioner.dhcp.files import (
    our_dnsmasq,
    put_host,
    read_hosts,
    reload_dnsmasq,
    remove_host,
    sync_hosts,
)
from provisioner.dhcp.hosts import DhcpPaths, plan_hosts
from provisioner.inventory import load_site

OTHER = "52:54:00:99:99:99,192.0.2.99,other,12h\n"


def test_serve_syncs_the_folder_to_the_site(site_dir: Path, tmp_path: Path) -> None:
    paths = DhcpPaths(tmp_path / "dhcp")
    site = load_site(site_dir / "site.yaml")
    diff = sync_hosts(paths, plan_hosts(site))
    assert len(diff.added) == len(site.nodes) and not diff.needs_reload
    assert read_hosts(paths.hostsdir)["ctl1.host"] == "52:54:00:00:02:0b,192.0.2.11,ctl1,12h\n"
    (paths.hostsdir / "gone.host").write_text(OTHER)
    diff = sync_hosts(paths, plan_hosts(site, exclude=frozenset({"cmp3"})))
    assert diff.removed == ["cmp3.host", "gone.host"] and diff.needs_reload
    assert sync_hosts(paths, plan_hosts(site, exclude=frozenset({"cmp3"}))).empty
    assert not list(paths.staging.iterdir())  # every file arrived by rename


def test_the_pipeline_touches_only_its_node(tmp_path: Path) -> None:
    paths = DhcpPaths(tmp_path / "dhcp")
    paths.hostsdir.mkdir(parents=True)
    (paths.hostsdir / "other.host").write_text(OTHER)
    line = "52:54:00:00:02:0c,192.0.2.12,ctl2,12h\n"
    assert put_host(paths, "ctl2.host", line)
    assert not put_host(paths, "ctl2.host", line)  # unchanged: nothing written
    assert read_hosts(paths.hostsdir) == {"ctl2.host": line, "other.host": OTHER}
    assert remove_host(paths, "ctl2.host")
    assert not remove_host(paths, "ctl2.host")
    assert read_hosts(paths.hostsdir) == {"other.host": OTHER}


def test_a_stale_pidfile_never_gets_a_signal_sent(tmp_path: Path) -> None:
    """The pid in dnsmasq's pidfile may belong to another process by now (here: the
    test itself, which a SIGHUP would kill): only a dnsmasq with our conf is told."""
    paths = DhcpPaths(tmp_path / "dhcp")
    paths.base.mkdir()
    assert our_dnsmasq(paths) is None and reload_dnsmasq(paths) is False  # no pidfile
    paths.pidfile.write_text(f"{os.getpid()}\n")
    assert our_dnsmasq(paths) is None
    assert reload_dnsmasq(paths) is False
    paths.pidfile.write_text("not a pid\n")
    assert reload_dnsmasq(paths) is False

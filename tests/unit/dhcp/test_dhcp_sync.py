"""dhcp/sync.py: the one writer of dnsmasq's host files, whole-folder (serve) or one
node's entry (the pipeline), and the one code that signals dnsmasq."""

from __future__ import annotations

import os
from pathlib import Path

from provisioner.dhcp.hosts import DhcpPaths, plan_hosts
from provisioner.dhcp.sync import dnsmasq_pid, read_hosts, reload_dnsmasq, sync_hosts
from provisioner.inventory import load_site


def test_serve_syncs_the_folder_to_the_site(site_dir: Path, tmp_path: Path) -> None:
    paths = DhcpPaths(tmp_path / "dhcp")
    site = load_site(site_dir / "site.yaml")
    diff = sync_hosts(paths, plan_hosts(site))
    assert len(diff.added) == len(site.nodes) and not diff.needs_reload
    assert read_hosts(paths.hostsdir)["ctl1.host"] == "52:54:00:00:02:0b,192.0.2.11,ctl1,12h\n"
    (paths.hostsdir / "gone.host").write_text("52:54:00:99:99:99,192.0.2.99,gone,12h\n")
    diff = sync_hosts(paths, plan_hosts(site, exclude=frozenset({"cmp3"})))
    assert diff.removed == ["cmp3.host", "gone.host"] and diff.needs_reload
    assert sync_hosts(paths, plan_hosts(site, exclude=frozenset({"cmp3"}))).empty
    assert not list(paths.staging.iterdir())  # every file arrived by rename


def test_the_pipeline_touches_only_its_node(site_dir: Path, tmp_path: Path) -> None:
    paths = DhcpPaths(tmp_path / "dhcp")
    site = load_site(site_dir / "site.yaml")
    paths.hostsdir.mkdir(parents=True)
    (paths.hostsdir / "other.host").write_text("52:54:00:99:99:99,192.0.2.99,other,12h\n")
    diff = sync_hosts(paths, plan_hosts(site), only={"ctl2.host"})
    assert diff.added == ["ctl2.host"] and not diff.removed
    assert sorted(read_hosts(paths.hostsdir)) == ["ctl2.host", "other.host"]
    diff = sync_hosts(paths, {}, only={"ctl2.host"})
    assert diff.removed == ["ctl2.host"]
    assert sorted(read_hosts(paths.hostsdir)) == ["other.host"]


def test_a_stale_pidfile_never_gets_a_signal_sent(tmp_path: Path) -> None:
    """The pid in dnsmasq's pidfile may belong to another process by now (here: the
    test itself, which a SIGHUP would kill): only a dnsmasq with our conf is told."""
    paths = DhcpPaths(tmp_path / "dhcp")
    paths.base.mkdir()
    assert dnsmasq_pid(paths) is None and reload_dnsmasq(paths) is False  # no pidfile
    paths.pidfile.write_text(f"{os.getpid()}\n")
    assert dnsmasq_pid(paths) is None
    assert reload_dnsmasq(paths) is False
    paths.pidfile.write_text("not a pid\n")
    assert reload_dnsmasq(paths) is False

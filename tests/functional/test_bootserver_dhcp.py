"""DHCP through the managed dnsmasq, answered to a real client (busybox udhcpc)
in a network namespace: fixed addresses, strict and open modes, nodes added and
removed while `provisioner serve` runs, and dnsmasq gone after SIGTERM."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from bootserver_support import (
    NET,
    LabNet,
    Serve,
    alive,
    descendants,
    lab_net,
    node_entry,
    sh,
    wait_for,
    write_lab_site,
)

from provisioner.inventory import load_site
from provisioner.pipeline.site_backends import SiteBackends

pytestmark = pytest.mark.functional


def udhcpc(ns: str, tries: int = 4, extra: tuple[str, ...] = (), limit: int = 40) -> str | None:
    """One DHCP exchange from the client namespace: the address leased, or None."""
    done = sh(
        "timeout", str(limit), "ip", "netns", "exec", ns,
        "busybox", "udhcpc", "-i", _client_if(ns), "-f", "-q", "-n", "-t", str(tries),
        "-T", "2", "-A", "1", "-s", "/bin/true", *extra,
        check=False, timeout=60,
    )  # fmt: skip
    m = re.search(r"lease of (\S+) obtained", done.stdout + done.stderr)
    return m.group(1) if m else None


def _client_if(ns: str) -> str:
    out = sh("ip", "netns", "exec", ns, "ip", "-o", "link", "show").stdout
    return next(
        line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if "lo:" not in line
    )


@pytest.fixture
def net() -> Iterator[LabNet]:
    with lab_net() as lab:
        yield lab


def start_serve(net: LabNet, site_dir: Path) -> Serve:
    serve = Serve(net.argv(), site_dir / "site.yaml", site_dir / "state", "--no-tftp")
    serve.wait_log("http: serving on")
    return serve


def test_known_mac_gets_its_fixed_address_unknown_gets_nothing(net: LabNet, site_dir: Path) -> None:
    write_lab_site(site_dir, net.bridge, [node_entry("lab1", 1)])
    serve = start_serve(net, site_dir)
    try:
        with net.client_ns("52:54:00:4a:00:01") as ns:
            assert udhcpc(ns) == f"{NET}.11"
        with net.client_ns("52:54:00:4a:00:77") as ns:
            assert udhcpc(ns, tries=2) is None  # strict: unknown MACs get nothing
        log = serve.log()
        assert "node lab1" in log and "DHCPACK" in log
        assert "unknown MAC 52:54:00:4a:00:77" in log
    finally:
        serve.stop()


def test_open_site_gives_unknown_macs_a_pool_address(net: LabNet, site_dir: Path) -> None:
    write_lab_site(site_dir, net.bridge, [node_entry("lab1", 1)], unknown_macs="discover")
    serve = start_serve(net, site_dir)
    try:
        with net.client_ns("52:54:00:4a:00:78") as ns:
            leased = udhcpc(ns)
        assert leased is not None
        assert 200 <= int(leased.rsplit(".", 1)[1]) <= 220
    finally:
        serve.stop()


def test_nodes_added_and_removed_while_serving_no_restart(net: LabNet, site_dir: Path) -> None:
    write_lab_site(site_dir, net.bridge, [node_entry("lab1", 1)])
    serve = start_serve(net, site_dir)
    try:
        dnsmasq_before = _dnsmasq_pids(serve)
        assert len(dnsmasq_before) == 1
        with net.client_ns("52:54:00:4a:00:05") as ns:
            assert udhcpc(ns, tries=2) is None
            # the operator adds the node to site.yaml while serve runs
            write_lab_site(site_dir, net.bridge, [node_entry("lab1", 1), node_entry("lab5", 5)])
            serve.wait_log("dhcp: host lab5 added")
            assert udhcpc(ns) == f"{NET}.15"
            # ... and removes it again
            write_lab_site(site_dir, net.bridge, [node_entry("lab1", 1)])
            serve.wait_log("dhcp: host lab5 removed")
            serve.wait_log("dnsmasq asked to re-read its host files")
            assert udhcpc(ns, tries=2) is None
        assert _dnsmasq_pids(serve) == dnsmasq_before  # never restarted
    finally:
        serve.stop()


def test_the_pipelines_host_entries_reach_serves_dnsmasq(net: LabNet, site_dir: Path) -> None:
    """The pipeline (here its backends in this process, as in a CLI run beside serve)
    removes a decommissioned node's entry and adds it back on provisioning; serve's
    dnsmasq follows through the one DHCP owner (dhcp/files.py), never restarted."""
    write_lab_site(site_dir, net.bridge, [node_entry("lab1", 1), node_entry("lab2", 2)])
    serve = start_serve(net, site_dir)
    try:
        dnsmasq_before = _dnsmasq_pids(serve)
        site = load_site(site_dir / "site.yaml")
        backends = SiteBackends(site_dir / "state")
        with net.client_ns("52:54:00:4a:00:02") as ns:
            assert udhcpc(ns) == f"{NET}.12"
            backends.remove_dhcp_host(site, site.node("lab2"))
            assert udhcpc(ns, tries=2) is None
            backends.add_dhcp_host(site, site.node("lab2"))
            assert udhcpc(ns) == f"{NET}.12"
        with net.client_ns("52:54:00:4a:00:01") as ns:
            assert udhcpc(ns) == f"{NET}.11"  # the other node's entry untouched
        assert _dnsmasq_pids(serve) == dnsmasq_before
    finally:
        serve.stop()


def test_sigterm_takes_dnsmasq_with_it(net: LabNet, site_dir: Path) -> None:
    write_lab_site(site_dir, net.bridge, [node_entry("lab1", 1)])
    serve = start_serve(net, site_dir)
    pids = _dnsmasq_pids(serve)
    assert pids
    assert serve.stop() == 0
    wait_for("dnsmasq to exit", lambda: not [p for p in pids if alive(p)], timeout=20)
    assert "dhcp: dnsmasq stopped" in serve.log()


def test_broken_site_edit_keeps_serving(net: LabNet, site_dir: Path) -> None:
    write_lab_site(site_dir, net.bridge, [node_entry("lab1", 1)])
    serve = start_serve(net, site_dir)
    try:
        site = site_dir / "site.yaml"
        site.write_text(site.read_text().replace("ip: 198.51.100.11", "ip: 203.0.113.11"))
        serve.wait_log("edit ignored, keeping the last good inventory")
        with net.client_ns("52:54:00:4a:00:01") as ns:
            assert udhcpc(ns) == f"{NET}.11"
    finally:
        serve.stop()


def _dnsmasq_pids(serve: Serve) -> list[int]:
    pids = []
    for pid in descendants(serve.proc.pid):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "dnsmasq":
                pids.append(pid)
        except OSError:
            pass
    return pids


def test_proxy_mode_adds_boot_information_to_another_dhcp_server(
    net: LabNet, site_dir: Path
) -> None:
    """Addresses come from the site's own DHCP server (busybox udhcpd here); the
    managed dnsmasq answers PXE clients in proxy mode with the boot server only."""
    leases = site_dir / "udhcpd.leases"
    leases.touch()
    conf = site_dir / "udhcpd.conf"
    conf.write_text(
        f"start {NET}.100\nend {NET}.150\ninterface {net.bridge}\nlease_file {leases}\n"
        f"pidfile {site_dir / 'udhcpd.pid'}\nopt subnet 255.255.255.0\nopt router {NET}.1\n"
    )
    other_dhcp = subprocess.Popen(net.argv("busybox", "udhcpd", "-f", str(conf)))
    write_lab_site(site_dir, net.bridge, [node_entry("lab1", 1)], dhcp_mode="proxy")
    serve = start_serve(net, site_dir)
    try:
        assert not list((site_dir / "state" / "dhcp" / "hosts").glob("*"))  # no addresses of ours
        with net.client_ns("52:54:00:4a:00:01") as ns:
            # a plain DHCP client: its address comes from the other server, no proxy answer
            leased = udhcpc(ns)
            assert leased is not None and 100 <= int(leased.rsplit(".", 1)[1]) <= 150
            assert "proxy" not in serve.log()
            # a PXE client (vendor class PXEClient, architecture 0: BIOS) gets the
            # proxy answer (udhcpc itself is no PXE client, so its outcome is moot)
            pxe = ("-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000")
            udhcpc(ns, tries=2, extra=pxe, limit=15)
        serve.wait_log("52:54:00:4a:00:01 proxy")
        log = serve.log()
        assert re.search(r"dhcp: node lab1: .*PXE\(.*\) 52:54:00:4a:00:01 proxy", log)
        assert "unknown MAC" not in log
    finally:
        serve.stop()
        other_dhcp.terminate()
        other_dhcp.wait(10)

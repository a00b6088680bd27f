"""The controller bundle's HAProxy and keepalived together, as on three controllers: clients
reach the API on the VIP, answered by every healthy controller; a controller whose API dies
is taken out by the health check; the API stays reachable when the VIP moves."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from provisioner import programs
from provisioner.inventory import Site
from provisioner.roles import DeployFacts, generate
from tests.functional.roles.conftest import bridge_lab, needs_root, run, wait_for
from tests.functional.roles.daemons import background, keepalived

pytestmark = [pytest.mark.functional, needs_root]
VIP = "203.0.113.10"
CONTROLLERS = ["ctl1", "ctl2", "ctl3"]
KEYSTONE_PORT = 5000


def api_answers(hub: str, tries: int = 9) -> set[str]:
    """Which controllers answered ``tries`` requests to Keystone on the VIP."""
    seen = set()
    for _ in range(tries):
        result = subprocess.run(
            [
                programs.path("ip"),
                "netns",
                "exec",
                hub,
                programs.path("curl"),
                "-s",
                "--max-time",
                "3",
                f"http://{VIP}:{KEYSTONE_PORT}/whoami",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if result.returncode == 0 and result.stdout.strip() in CONTROLLERS:
            seen.add(result.stdout.strip())
    return seen


def keystone_stub(ns: str, ip: str, root: Path, stack: ExitStack) -> subprocess.Popen[bytes]:
    """A stand-in API on the controller's own address (what HAProxy balances over)."""
    cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "http.server", "--bind", ip]
    cmd += ["--directory", str(root), str(KEYSTONE_PORT)]
    return stack.enter_context(background(cmd, root.parent / "api.log"))


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as es:
        yield es


def test_api_on_the_vip_survives_a_dead_api_and_a_moved_vip(
    lab_site: Site, tmp_path: Path, stack: ExitStack
) -> None:
    spaces = bridge_lab(lab_site, CONTROLLERS, stack)
    hub = spaces["hub"]
    apis, keepaliveds = {}, {}
    for node in CONTROLLERS:
        ns, ip, d = spaces[node], str(lab_site.node(node).ip), tmp_path / node
        bundle = generate(lab_site, node, DeployFacts())
        for rel, text in bundle.items():
            (d / rel).parent.mkdir(parents=True, exist_ok=True)
            (d / rel).write_text(text)
        run(
            [
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-q",
                "-p",
                str(d / "sysctl/60-provisioner-vip.conf"),
            ]
        )
        (d / "www" / "v3").mkdir(parents=True)
        (d / "www" / "whoami").write_text(node)
        apis[node] = keystone_stub(ns, ip, d / "www", stack)
        cfg = str(d / "haproxy/haproxy.cfg")
        # the stats socket of `ha status`: one per controller here, not the host's /run
        text = Path(cfg).read_text()
        Path(cfg).write_text(text.replace("/run/haproxy/admin.sock", str(d / "admin.sock")))
        stack.enter_context(
            background(["ip", "netns", "exec", ns, "haproxy", "-db", "-f", cfg], d / "haproxy.log")
        )
        keepaliveds[node] = stack.enter_context(keepalived(ns, d / "keepalived/keepalived.conf", d))

    # every controller's API answers through the VIP
    wait_for(lambda: api_answers(hub) == set(CONTROLLERS), 60, "all three APIs behind the VIP")

    # ctl3's API dies: the health check takes it out, clients never see an error
    apis["ctl3"].send_signal(signal.SIGTERM)
    apis["ctl3"].wait(timeout=15)
    wait_for(lambda: api_answers(hub) == {"ctl1", "ctl2"}, 60, "ctl3 out of the pool")

    # the VIP's holder (ctl1) stops keepalived: the VIP moves, the API stays reachable
    keepaliveds["ctl1"].send_signal(signal.SIGTERM)
    keepaliveds["ctl1"].wait(timeout=15)
    wait_for(lambda: api_answers(hub, tries=4) == {"ctl1", "ctl2"}, 60, "API after failover")
    out = run(["ip", "-n", spaces["ctl2"], "-4", "-o", "addr", "show", "dev", "pv7eth"]).stdout
    assert f" {VIP}/" in out

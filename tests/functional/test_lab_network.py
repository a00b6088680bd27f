"""The lab network for real: a namespace with a bridge and taps, up and down twice."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from provisioner import programs
from provisioner_lab.network import LabNetwork, detect_mode, namespaces, plan_network

pytestmark = [pytest.mark.functional]


@pytest.fixture
def lab_net() -> Iterator[LabNetwork]:
    plan = plan_network(
        ["ctl1", "a-very-long-node-name"],
        "netns",
        namespace=f"pv9-{uuid.uuid4().hex[:8]}",
        cidr="203.0.113.0/24",
        addresses=("203.0.113.2", "203.0.113.3"),
    )
    net = LabNetwork(plan)
    try:
        yield net
    finally:
        subprocess.run(
            programs.command(["ip", "netns", "del", plan.namespace]), capture_output=True
        )


def test_root_networking_is_detected() -> None:
    mode, why = detect_mode(probe_prefix="pv9-probe")
    assert mode == "netns", why  # CI runs as root


def test_up_is_idempotent_and_down_removes_everything(lab_net: LabNetwork) -> None:
    plan = lab_net.plan
    assert not lab_net.is_up()
    assert lab_net.up()  # changes made
    assert lab_net.up() == []  # nothing left to do
    assert lab_net.is_up()
    seen = lab_net.observe()
    assert seen.addresses == {"203.0.113.2/24", "203.0.113.3/24"}
    assert all(seen.links[tap] == plan.bridge for tap in plan.taps.values())
    # The bridge answers on both addresses inside the namespace, and only there.
    for addr in ("203.0.113.2", "203.0.113.3"):
        ping = subprocess.run(
            programs.command([*plan.exec_prefix(), "ping", "-c", "1", "-W", "5", addr]),
            capture_output=True,
        )
        assert ping.returncode == 0, ping.stderr
    host_routes = subprocess.run(
        [programs.path("ip"), "-4", "addr"], capture_output=True, text=True
    ).stdout
    assert "203.0.113.2" not in host_routes

    # A tap that lost its bridge is put back by the next up.
    tap = plan.taps["ctl1"]
    subprocess.run(
        programs.command(["ip", "-n", plan.namespace, "link", "set", tap, "nomaster"]), check=True
    )
    assert [" ".join(c) for c in lab_net.up()] == [
        f"ip -n {plan.namespace} link set {tap} master {plan.bridge}"
    ]

    assert lab_net.down()
    assert plan.namespace not in namespaces()
    assert lab_net.down() == []

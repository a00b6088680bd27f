"""Planning the lab network is pure: ip commands from what is there and what is wanted."""

from __future__ import annotations

import pytest

from provisioner_lab.network import (
    LabNetworkError,
    Observed,
    plan_down,
    plan_network,
    plan_up,
    qemu_netdev,
    tap_names,
)


def test_tap_names_fit_linux_interface_names() -> None:
    names = tap_names(["ctl1", "a-very-long-node-name-indeed"])
    assert names["ctl1"] == "tap-ctl1"
    assert all(len(n) <= 15 for n in names.values())
    assert len(set(names.values())) == 2


def test_up_from_nothing_creates_namespace_bridge_addresses_and_taps() -> None:
    plan = plan_network(["ctl1", "cmp1"], "netns", namespace="labx")
    cmds = [" ".join(c) for c in plan_up(plan, Observed())]
    assert cmds[0] == "ip netns add labx"
    assert "ip -n labx link add labbr0 type bridge forward_delay 0" in cmds
    assert "ip -n labx addr add 192.0.2.2/24 dev labbr0" in cmds
    assert "ip -n labx addr add 192.0.2.3/24 dev labbr0" in cmds
    assert "ip -n labx tuntap add dev tap-ctl1 mode tap" in cmds
    assert "ip -n labx link set tap-cmp1 master labbr0" in cmds


def test_up_is_idempotent_and_repairs_only_what_is_missing() -> None:
    plan = plan_network(["ctl1"], "netns", namespace="labx")
    complete = Observed(
        namespace=True,
        links={"lo": None, "labbr0": None, "tap-ctl1": "labbr0"},
        up=frozenset({"lo", "labbr0", "tap-ctl1"}),
        addresses=frozenset({"192.0.2.2/24", "192.0.2.3/24"}),
    )
    assert plan_up(plan, complete) == []
    detached = Observed(
        namespace=True,
        links={"lo": None, "labbr0": None, "tap-ctl1": None},
        up=frozenset({"lo", "labbr0"}),
        addresses=frozenset({"192.0.2.2/24", "192.0.2.3/24"}),
    )
    assert [" ".join(c) for c in plan_up(plan, detached)] == [
        "ip -n labx link set tap-ctl1 master labbr0",
        "ip -n labx link set tap-ctl1 up",
    ]


def test_down_deletes_the_namespace_only_when_it_exists() -> None:
    plan = plan_network(["ctl1"], "netns", namespace="labx")
    assert plan_down(plan, Observed()) == []
    assert plan_down(plan, Observed(namespace=True)) == [["ip", "netns", "del", "labx"]]


def test_user_mode_has_no_commands_and_a_slirp_network_shaped_like_the_lab() -> None:
    plan = plan_network(["ctl1"], "user")
    assert plan_up(plan, Observed()) == [] and plan.exec_prefix() == []
    netdev = qemu_netdev(plan, "ctl1", "192.0.2.11", tftp_port=6969, bootfile="ipxe.efi")
    assert netdev.startswith("user,id=n0,net=192.0.2.0/24,host=192.0.2.2,")
    assert "dhcpstart=192.0.2.11" in netdev
    assert "bootfile=tftp://192.0.2.2:6969/ipxe.efi" in netdev
    assert "user-mode" in plan.describe()


def test_netns_mode_netdev_is_the_nodes_tap() -> None:
    plan = plan_network(["ctl1"], "netns", namespace="labx")
    assert qemu_netdev(plan, "ctl1", "192.0.2.11") == (
        "tap,id=n0,ifname=tap-ctl1,script=no,downscript=no"
    )
    assert plan.exec_prefix() == ["ip", "netns", "exec", "labx"]
    with pytest.raises(LabNetworkError, match="node nope"):
        qemu_netdev(plan, "nope", "192.0.2.11")


def test_addresses_outside_the_network_are_refused() -> None:
    with pytest.raises(LabNetworkError, match="outside"):
        plan_network([], "netns", cidr="203.0.113.0/24")

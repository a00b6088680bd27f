"""`ha status`'s parsing and verdicts, fed what the programs really print (HAProxy's
`show stat` captured from a real haproxy 2.6 with one backend up and one down)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from provisioner.inventory import Site, load_site
from provisioner.roles.hastatus import NO_SERVICE, parse_probe, render_text, summarize
from tests.example_secrets import seed_example_secrets

REPO = Path(__file__).resolve().parents[3]
STAT = (Path(__file__).parent / "data" / "haproxy-show-stat.csv").read_text()


def rabbit(ctl3_up: bool, partitions: dict[str, list[str]]) -> str:
    """`rabbitmqctl -q cluster_status --formatter json` as RabbitMQ 3.10.8 prints it
    (captured on a lab controller; feature flags and listeners shortened)."""
    running = ["rabbit@ctl1", "rabbit@ctl2", *(["rabbit@ctl3"] if ctl3_up else [])]
    return json.dumps(
        {
            "alarms": [],
            "cluster_name": "lab-controllers",
            "disk_nodes": ["rabbit@ctl1", "rabbit@ctl2", "rabbit@ctl3"],
            "feature_flags": [{"name": "quorum_queue", "state": "enabled"}],
            "listeners": {"rabbit@ctl1": [{"interface": "192.0.2.11", "port": 5672}]},
            "maintenance_status": {n: "not under maintenance" for n in running},
            "partitions": partitions,
            "ram_nodes": [],
            "running_nodes": running,
            "versions": {n: {"rabbitmq_version": "3.10.8"} for n in running},
        },
        separators=(",", ":"),
    )


CRM = """Cluster Summary:
  * Stack: corosync
  * Current DC: ctl1 (version 2.1.5-a3f44794f94) - partition with quorum
  * 3 nodes configured

Node List:
  * Online: [ ctl1 ctl2 {ctl3}]

Full List of Resources:
  * fence-ctl1\t(stonith:fence_ipmilan):\t Started ctl2
"""


def probe_text(
    node: str, vip: bool, ctl3_up: bool = True, partitions: dict[str, list[str]] | None = None
) -> str:
    size = "3" if ctl3_up else "2"
    return "\n".join(
        [
            "== vip",
            "192.0.2.11/24" if node == "ctl1" else "192.0.2.12/24",
            *(["192.0.2.10/24"] if vip else []),
            "== haproxy",
            STAT,
            "== galera",
            f"wsrep_cluster_size\t{size}",
            "wsrep_cluster_status\tPrimary",
            "wsrep_local_state_comment\tSynced",
            "wsrep_ready\tON",
            "== rabbitmq",
            rabbit(ctl3_up, partitions or {}),
            "== pacemaker",
            CRM.format(ctl3="ctl3 " if ctl3_up else ""),
            "== packages",
            "mariadb-server installed",
            "keystone installed",
            "== end",
        ]
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    folder = tmp_path_factory.mktemp("example")
    shutil.copy(REPO / "examples" / "site.yaml", folder / "site.yaml")
    seed_example_secrets(folder / "secrets")
    return load_site(folder / "site.yaml")


def test_a_whole_cluster_is_healthy_and_says_who_holds_the_vip(site: Site) -> None:
    probes = [
        parse_probe("ctl1", probe_text("ctl1", vip=True)),
        parse_probe("ctl2", probe_text("ctl2", vip=False)),
    ]
    probes[1].installed.discard("keystone")  # ctl2 has no Keystone package
    status = summarize(site, probes)

    assert status.vip == "192.0.2.10" and status.vip_holders == ["ctl1"]
    # HAProxy says ctl2's Keystone is down; it is not installed there: never "up" or "down"
    assert status.backends["keystone"] == {"ctl1": "up", "ctl2": NO_SERVICE}
    # and one HAProxy just started still calls UP (it has not checked yet): not installed
    probes[0].installed.discard("keystone")
    assert summarize(site, probes).backends["keystone"]["ctl1"] == NO_SERVICE
    probes[0].installed.add("keystone")
    assert status.backends["galera"] == {"ctl1": "up", "ctl2": "down"}
    assert status.galera["ctl1"] == {
        "wsrep_cluster_size": "3",
        "wsrep_cluster_status": "Primary",
        "wsrep_local_state_comment": "Synced",
    }
    assert status.rabbitmq["ctl1"] == {
        "running": ["rabbit@ctl1", "rabbit@ctl2", "rabbit@ctl3"],
        "partitions": [],
    }
    assert status.pacemaker["ctl2"]["online"] == ["ctl1", "ctl2", "ctl3"]
    assert status.pacemaker["ctl2"]["fence"] == {"fence-ctl1": "Started ctl2"}
    assert not status.healthy  # the Galera backend of ctl2 is down, and it is installed there
    text = render_text(status)
    assert "VIP 192.0.2.10: held by ctl1" in text
    assert f"keystone       ctl1 up, ctl2 {NO_SERVICE}" in text


def test_a_lost_member_a_partition_or_no_vip_holder_is_not_healthy(site: Site) -> None:
    partitioned = parse_probe(
        "ctl1",
        probe_text("ctl1", vip=False, partitions={"rabbit@ctl1": ["rabbit@ctl3"]}),
    )
    assert partitioned.rabbit_partitions == ["rabbit@ctl1: rabbit@ctl3"]
    status = summarize(site, [partitioned])
    assert status.vip_holders == [] and not status.healthy
    assert "VIP 192.0.2.10: held by NOBODY" in render_text(status)

    short = parse_probe("ctl1", probe_text("ctl1", vip=True, ctl3_up=False))
    assert short.rabbit_running == ["rabbit@ctl1", "rabbit@ctl2"]
    assert short.pcmk_online == ["ctl1", "ctl2"]
    # without crm_mon (pacemaker-cli-utils): Pacemaker's crm_node -l says who is a member
    bare = parse_probe(
        "ctl1", probe_text("ctl1", vip=True).replace("== pacemaker", "== crm_node\n"
        "1 ctl1 member\n2 ctl2 member\n3 ctl3 lost\n== pacemaker-crm-mon-missing")
    )  # fmt: skip
    assert (bare.pcmk_online, bare.pcmk_offline) == (["ctl1", "ctl2"], ["ctl3"])
    assert short.galera["wsrep_cluster_size"] == "2"


def test_a_cut_off_probe_is_an_unreachable_node(site: Site) -> None:
    probe = parse_probe("ctl3", "== vip\n192.0.2.13/24\n")  # ssh dropped mid-way
    assert not probe.reachable
    status = summarize(site, [probe])
    assert status.unreachable == {"ctl3": "probe output incomplete"} and not status.healthy

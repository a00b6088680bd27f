"""Publishing the example site into a real BIND, every record checked with dig."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from bindlab import DOMAIN, Lab, make_lab

from provisioner.ddns.publish import publish_node, publish_site, publish_vips, unpublish_node
from provisioner.errors import EXIT_PARTIAL
from provisioner.inventory import Node

pytestmark = pytest.mark.functional


@pytest.fixture
def lab(site_dir: Path, tmp_path: Path) -> Iterator[Lab]:
    yield from make_lab(site_dir, tmp_path / "bind")


ALIASES = ["keystone", "glance", "nova", "placement", "neutron", "cinder", "heat", "horizon"]


def assert_site_published(lab: Lab, nodes: list[Node] | None = None) -> None:
    """Each node's A and PTR (every node by default), the VIP and its service names."""
    site = lab.site()
    for node in site.nodes if nodes is None else nodes:
        assert lab.dig(f"{node.name}.{DOMAIN}", "A") == [str(node.ip)], node.name
        assert lab.dig("-x", str(node.ip)) == [f"{node.name}.{DOMAIN}."], node.name
    assert lab.dig(f"api.{DOMAIN}", "A") == ["192.0.2.10"]
    assert lab.dig("-x", "192.0.2.10") == [f"api.{DOMAIN}."]
    for alias in ALIASES:
        assert lab.dig(f"{alias}.{DOMAIN}", "CNAME") == [f"api.{DOMAIN}."], alias


def test_plan_apply_check_publish_every_record(lab: Lab) -> None:
    planned = lab.cli("dns", "plan")
    assert planned.returncode == 0, planned.stderr
    assert f"node ctl1: + ctl1.{DOMAIN}. 300 A 192.0.2.11" in planned.stdout
    assert f"node ctl1: + 11.2.0.192.in-addr.arpa. 300 PTR ctl1.{DOMAIN}." in planned.stdout
    assert f"+ keystone.{DOMAIN}. 300 CNAME api.{DOMAIN}." in planned.stdout
    assert lab.dig(f"ctl1.{DOMAIN}", "A") == []  # plan sends nothing

    applied = lab.cli("dns", "apply")
    assert applied.returncode == 0, applied.stderr
    assert "update message(s)" in applied.stdout
    assert_site_published(lab)

    again = lab.cli("dns", "plan")
    assert again.returncode == 0 and "no changes" in again.stdout

    checked = lab.cli("dns", "check")
    assert checked.returncode == 0, checked.stdout
    assert "30/30 answers as expected" in checked.stdout


def test_apply_batches_many_names_into_few_messages(lab: Lab) -> None:
    report = publish_site(lab.site())
    assert report.changes == 30  # 20 forward names (10 nodes, api, 8 aliases... + PTRs) per zone
    assert report.messages == 2  # one per zone
    assert_site_published(lab)
    assert publish_site(lab.site()).changes == 0


def test_check_reports_a_missing_ptr(lab: Lab) -> None:
    publish_site(lab.site())
    lab.nsupdate("2.0.192.in-addr.arpa", "update delete 19.2.0.192.in-addr.arpa PTR")
    checked = lab.cli("dns", "check")
    assert checked.returncode == EXIT_PARTIAL
    assert "node cmp2" in checked.stdout
    assert "19.2.0.192.in-addr.arpa." in checked.stdout
    assert "no PTR record (expected cmp2.lab.example.test.)" in checked.stdout
    assert "29/30 answers as expected" in checked.stdout


def _set_ip(site_dir: Path, old: str, new: str) -> None:
    path = site_dir / "site.yaml"
    text = path.read_text()
    assert f"ip: {old}\n" in text
    path.write_text(text.replace(f"ip: {old}\n", f"ip: {new}\n"))


def test_reprovision_with_new_ip_leaves_no_stale_a_or_ptr(lab: Lab) -> None:
    publish_site(lab.site())
    _set_ip(lab.site_dir, "192.0.2.11", "192.0.2.31")
    site = lab.site()
    publish_node(site, site.node("ctl1"))
    assert lab.dig(f"ctl1.{DOMAIN}", "A") == ["192.0.2.31"]
    assert lab.dig("-x", "192.0.2.31") == [f"ctl1.{DOMAIN}."]
    assert lab.dig("-x", "192.0.2.11") == []
    zone = lab.axfr(DOMAIN) + lab.axfr("2.0.192.in-addr.arpa")
    assert "192.0.2.11" not in zone and "11.2.0.192.in-addr.arpa" not in zone
    assert publish_node(site, site.node("ctl1")).changes == 0  # idempotent


def test_two_nodes_swapping_addresses_in_one_apply(lab: Lab) -> None:
    publish_site(lab.site())
    _set_ip(lab.site_dir, "192.0.2.11", "192.0.2.99")
    _set_ip(lab.site_dir, "192.0.2.12", "192.0.2.11")
    _set_ip(lab.site_dir, "192.0.2.99", "192.0.2.12")
    applied = lab.cli("dns", "apply")
    assert applied.returncode == 0, applied.stderr
    assert lab.dig(f"ctl1.{DOMAIN}", "A") == ["192.0.2.12"]
    assert lab.dig(f"ctl2.{DOMAIN}", "A") == ["192.0.2.11"]
    assert lab.dig("-x", "192.0.2.11") == [f"ctl2.{DOMAIN}."]
    assert lab.dig("-x", "192.0.2.12") == [f"ctl1.{DOMAIN}."]


def test_decommission_removes_a_ptr_and_marker_idempotently(lab: Lab) -> None:
    publish_site(lab.site())
    assert lab.dig(f"cmp3.{DOMAIN}", "TXT") != []
    removed = lab.cli("dns", "unpublish", "cmp3")
    assert removed.returncode == 0, removed.stderr
    assert lab.dig(f"cmp3.{DOMAIN}", "ANY") == []
    assert lab.dig("-x", "192.0.2.20") == []
    assert lab.dig(f"cmp2.{DOMAIN}", "A") == ["192.0.2.19"]  # the others stay
    assert unpublish_node(lab.site(), "cmp3").changes == 0
    again = lab.cli("dns", "unpublish", "cmp3")
    assert again.returncode == 0 and "cmp3: 0 DNS change(s)" in again.stdout


def test_orphans_are_listed_and_pruned(lab: Lab) -> None:
    publish_site(lab.site())
    path = lab.site_dir / "site.yaml"
    text = path.read_text()
    start = text.index("  - name: cmp3")
    path.write_text(text[:start])  # cmp3 is the last node
    planned = lab.cli("dns", "plan")
    assert planned.returncode == 0, planned.stderr
    assert f"orphan (published by this site, no longer in site.yaml): cmp3.{DOMAIN}." in (
        planned.stdout
    )
    assert lab.dig(f"cmp3.{DOMAIN}", "A") == ["192.0.2.20"]
    pruned = lab.cli("dns", "apply", "--prune")
    assert pruned.returncode == 0, pruned.stderr
    assert lab.dig(f"cmp3.{DOMAIN}", "A") == []
    assert lab.dig("-x", "192.0.2.20") == []


def test_nodes_published_concurrently_by_the_pipeline(lab: Lab) -> None:
    site = lab.site()
    with ThreadPoolExecutor(max_workers=10) as pool:
        reports = list(pool.map(lambda node: publish_node(site, node), site.nodes))
    assert [r.changes for r in reports] == [2] * len(site.nodes)
    for node in site.nodes:
        assert lab.dig(f"{node.name}.{DOMAIN}", "A") == [str(node.ip)]
        assert lab.dig("-x", str(node.ip)) == [f"{node.name}.{DOMAIN}."]


def test_controllers_publishing_their_shared_vip_at_once_all_succeed(lab: Lab) -> None:
    """The pipeline publishes a role's VIP with each of its nodes; with fan-out the
    controllers race to write the same names, and each must end up published."""
    site = lab.site()
    controllers = [n for n in site.nodes if site.roles[n.role].ha.vips]
    assert len(controllers) >= 3

    def publish(node: Node) -> None:
        publish_node(site, node, retry_for=10)
        publish_vips(site, retry_for=10)

    for _ in range(5):  # fresh races: the first round writes, later ones find it done
        with ThreadPoolExecutor(max_workers=len(controllers) * 2) as pool:
            list(pool.map(publish, controllers * 2))
    assert_site_published(lab, controllers)

"""Batched updates against a real BIND: split messages, one refused node, the no-change memo."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from bindlab import DOMAIN, REVERSE, Lab, make_lab

from provisioner.ddns.client import DnsServer
from provisioner.ddns.publish import apply_plan, make_plan, site_scope
from provisioner.errors import EXIT_PARTIAL, DnsPartlyRejected

pytestmark = pytest.mark.functional


@pytest.fixture
def lab(site_dir: Path, tmp_path: Path) -> Iterator[Lab]:
    yield from make_lab(site_dir, tmp_path / "bind")


@pytest.fixture
def cmp2_refused(site_dir: Path, tmp_path: Path) -> Iterator[Lab]:
    """A BIND whose update policy refuses the key one name (cmp2), first match wins."""
    labs = make_lab(site_dir, tmp_path / "bind", start=False)
    lab = next(labs)
    conf = lab.config.conf.read_text()
    grant = 'update-policy { grant "provisioner-key" zonesub ANY; };'
    forward = conf.index(f'zone "{DOMAIN}"')
    conf = conf[:forward] + conf[forward:].replace(
        grant,
        f'update-policy {{ deny "provisioner-key" name cmp2.{DOMAIN}. ANY; '
        'grant "provisioner-key" zonesub ANY; };',
        1,
    )
    lab.config.conf.write_text(conf)
    lab.server.start(timeout=60)
    try:
        yield lab
    finally:
        labs.close()


def _published(lab: Lab) -> dict[str, list[str]]:
    return {n.name: lab.dig(f"{n.name}.{DOMAIN}", "A") for n in lab.site().nodes}


def test_a_site_split_over_many_small_messages_all_arrives(lab: Lab) -> None:
    site = lab.site()
    server = DnsServer.from_site(site)
    planned = make_plan(site, server, site_scope(site), retry_for=5)
    report = apply_plan(site, server, planned, retry_for=5, max_bytes=400)
    assert report.changes == 30
    assert report.messages > 6  # 400 bytes hold a few names each
    assert sum(report.accepted.values()) == report.messages  # none refused, none split
    for node in site.nodes:
        assert lab.dig(f"{node.name}.{DOMAIN}", "A") == [str(node.ip)], node.name
        assert lab.dig(f"{node.name}.{DOMAIN}", "TXT") == [
            f'"provisioner site=example owner=node/{node.name}"'
        ]
        assert lab.dig("-x", str(node.ip)) == [f"{node.name}.{DOMAIN}."], node.name
    assert lab.dig(f"keystone.{DOMAIN}", "CNAME") == [f"api.{DOMAIN}."]
    again = make_plan(site, server, site_scope(site), retry_for=5)
    assert again.changes.changes == []


def test_one_refused_node_does_not_fail_the_others_and_is_named(cmp2_refused: Lab) -> None:
    lab = cmp2_refused
    site = lab.site()
    server = DnsServer.from_site(site)
    planned = make_plan(site, server, site_scope(site), retry_for=5)
    with pytest.raises(DnsPartlyRejected) as caught:
        apply_plan(site, server, planned, retry_for=5)
    message = str(caught.value)
    assert caught.value.rcode == "REFUSED"
    assert len(caught.value.failures) == 2  # the A+marker refused, the PTR then not sent
    assert f"node cmp2: update of zone {DOMAIN}. at 127.0.0.1:{lab.port} failed with REFUSED" in (
        message
    )
    assert f"cmp2.{DOMAIN}. A/TXT" in message
    assert f"not sent (its other records were refused): node cmp2: 19.{REVERSE}. PTR" in message
    published = _published(lab)
    assert published.pop("cmp2") == []
    assert all(published.values()), published
    assert lab.dig("-x", "192.0.2.19") == []  # no PTR to a name that has no A
    assert lab.dig("-x", "192.0.2.20") == [f"cmp3.{DOMAIN}."]


def test_cli_exits_partial_and_names_the_node(cmp2_refused: Lab) -> None:
    applied = cmp2_refused.cli("dns", "apply")
    assert applied.returncode == EXIT_PARTIAL, applied.stderr
    assert "node cmp2: update of zone" in applied.stderr
    assert "(records: cmp2.lab.example.test. A/TXT)" in applied.stderr
    assert cmp2_refused.dig(f"cmp3.{DOMAIN}", "A") == ["192.0.2.20"]
    assert not (cmp2_refused.site_dir / "state" / "dns-memo.json").exists()


def test_no_change_run_uses_the_memo_until_the_zone_changes(lab: Lab) -> None:
    first = lab.cli("dns", "apply")
    assert first.returncode == 0, first.stderr
    memo_path = lab.site_dir / "state" / "dns-memo.json"
    memo = json.loads(memo_path.read_text())
    assert set(memo["zones"]) == {f"{DOMAIN}.", f"{REVERSE}."}
    secret = (lab.site_dir / "secrets" / "tsig.secret").read_text().strip()
    assert secret not in memo_path.read_text()

    again = lab.cli("-vv", "dns", "apply")
    assert again.returncode == 0, again.stderr
    assert "DNS is up to date: no changes" in again.stdout
    assert "read by AXFR" not in again.stderr  # answered from the serials

    # another admin removes a record: the serial moves, the next run reads and repairs
    lab.nsupdate(DOMAIN, f"update delete cmp3.{DOMAIN} A")
    repaired = lab.cli("-vv", "dns", "apply")
    assert repaired.returncode == 0, repaired.stderr
    assert "read by AXFR" in repaired.stderr
    assert f"+ cmp3.{DOMAIN}. 300 A 192.0.2.20" in repaired.stdout
    assert lab.dig(f"cmp3.{DOMAIN}", "A") == ["192.0.2.20"]

    # the site changes: another key, so the memo is not used either
    path = lab.site_dir / "site.yaml"
    path.write_text(path.read_text().replace("ip: 192.0.2.20", "ip: 192.0.2.40"))
    moved = lab.cli("dns", "apply")
    assert moved.returncode == 0, moved.stderr
    assert lab.dig(f"cmp3.{DOMAIN}", "A") == ["192.0.2.40"]
    assert lab.dig("-x", "192.0.2.20") == []
